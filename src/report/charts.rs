//! Plots as SVG text, drawn with plotters' SVG backend. Every plot is one [`Plot`]: two axes (a log
//! axis is drawn as a linear one over log10 of the values, with labels in the values' terms), line
//! traces that break where a value is missing, and rectangles for stacked bars. Text is left to the
//! browser's sans-serif font: nothing is loaded.

use std::ops::Range;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::prelude::*;

/// Every plot's size in SVG units (the page scales it to its column).
pub const SIZE: (u32, u32) = (640, 320);

/// A colour, for the plot and for its legend in the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgb(pub u8, pub u8, pub u8);

impl Rgb {
    pub fn hex(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }

    fn color(self) -> RGBColor {
        RGBColor(self.0, self.1, self.2)
    }
}

/// Series colours in order (Tableau 10).
pub const PALETTE: [Rgb; 10] = [
    Rgb(0x4e, 0x79, 0xa7),
    Rgb(0xf2, 0x8e, 0x2b),
    Rgb(0xe1, 0x57, 0x59),
    Rgb(0x76, 0xb7, 0xb2),
    Rgb(0x59, 0xa1, 0x4f),
    Rgb(0xed, 0xc9, 0x48),
    Rgb(0xb0, 0x7a, 0xa1),
    Rgb(0xff, 0x9d, 0xa7),
    Rgb(0x9c, 0x75, 0x5f),
    Rgb(0xba, 0xb0, 0xac),
];

pub struct Axis {
    pub title: String,
    /// The shown range, in the values' terms.
    pub lo: f64,
    pub hi: f64,
    pub ticks: Vec<f64>,
    pub log: bool,
    pub format: Box<dyn Fn(f64) -> String>,
}

impl Axis {
    /// From 0 to a round number above `max`, with 4 to 8 round ticks.
    pub fn linear(title: impl Into<String>, max: f64) -> Axis {
        let max = if max.is_finite() && max > 0.0 {
            max
        } else {
            1.0
        };
        let step = round_step(max / 5.0);
        let hi = (max * 1.05 / step).ceil() * step;
        let ticks = (0..)
            .map(|i| i as f64 * step)
            .take_while(|t| *t <= hi + step * 1e-9)
            .collect();
        Axis {
            title: title.into(),
            lo: 0.0,
            hi,
            ticks,
            log: false,
            format: Box::new(format_number),
        }
    }

    /// A log axis around `min..max` (both > 0) with ticks at 1, 2 and 5 times powers of ten (only
    /// the powers when that would be too many, every digit when too few).
    pub fn log(title: impl Into<String>, min: f64, max: f64) -> Axis {
        let min = if min.is_finite() && min > 0.0 {
            min
        } else {
            0.001
        };
        let max = if max.is_finite() && max > min {
            max
        } else {
            min * 10.0
        };
        // 1, 2 or 5 times powers of ten (or `steps` of them) from below `lo` to above `hi`.
        let series = |steps: &[f64], lo: f64, hi: f64| -> Vec<f64> {
            let first = lo.log10().floor() as i32 - 1;
            let last = hi.log10().ceil() as i32 + 1;
            (first..=last)
                // Dividing by 10^-e keeps 0.3 from being 0.30000000000000004.
                .flat_map(|e| {
                    steps.iter().map(move |s| {
                        if e < 0 {
                            s / 10f64.powi(-e)
                        } else {
                            s * 10f64.powi(e)
                        }
                    })
                })
                .collect()
        };
        // The axis starts and ends at round values around the data, so both ends are labelled.
        let round = series(&[1.0, 2.0, 5.0], min, max);
        let lo = round
            .iter()
            .rev()
            .copied()
            .find(|t| *t <= min / 1.1)
            .unwrap_or(min / 2.0);
        let hi = round
            .iter()
            .copied()
            .find(|t| *t >= max * 1.1)
            .unwrap_or(max * 2.0);
        let within = |steps: &[f64]| -> Vec<f64> {
            series(steps, lo, hi)
                .into_iter()
                .filter(|t| *t >= lo * 0.999 && *t <= hi * 1.001)
                .collect()
        };
        let mut ticks = within(&[1.0, 2.0, 5.0]);
        if ticks.len() > 10 {
            ticks = within(&[1.0]);
        } else if ticks.len() < 3 {
            ticks = within(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
        }
        Axis {
            title: title.into(),
            lo,
            hi,
            ticks,
            log: true,
            format: Box::new(format_number),
        }
    }

    fn plot(&self, v: f64) -> f64 {
        if self.log { v.max(1e-300).log10() } else { v }
    }

    fn value(&self, p: f64) -> f64 {
        if self.log { 10f64.powf(p) } else { p }
    }

    fn range(&self) -> Range<f64> {
        let (lo, hi) = (self.plot(self.lo), self.plot(self.hi));
        // plotters divides by the range's width: never let it be zero.
        if hi > lo { lo..hi } else { lo..lo + 1.0 }
    }
}

/// A line, broken where a point is missing.
pub struct Trace {
    pub color: Rgb,
    pub points: Vec<Option<(f64, f64)>>,
    /// Dots at the points, for short series whose lines would be hard to see.
    pub markers: bool,
    /// Line width; a wider line under a narrower one stays visible where they meet.
    pub width: u32,
}

/// A filled rectangle in the values' terms (a bar, or a part of a stacked one).
pub struct Bar {
    pub color: Rgb,
    pub x: (f64, f64),
    pub y: (f64, f64),
}

pub struct Plot {
    pub x: Axis,
    pub y: Axis,
    pub traces: Vec<Trace>,
    pub bars: Vec<Bar>,
}

impl Plot {
    /// The plot as an `<svg>` element.
    pub fn svg(&self) -> Result<String, String> {
        let mut out = String::new();
        self.draw(&mut out).map_err(|e| e.to_string())?;
        Ok(out)
    }

    fn draw(&self, out: &mut String) -> Result<(), Box<dyn std::error::Error + '_>> {
        let root = SVGBackend::with_string(out, SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        let x_ticks: Vec<f64> = self.x.ticks.iter().map(|&t| self.x.plot(t)).collect();
        let y_ticks: Vec<f64> = self.y.ticks.iter().map(|&t| self.y.plot(t)).collect();
        let mut chart = ChartBuilder::on(&root)
            .margin_top(12)
            .margin_right(34)
            .margin_left(8)
            .margin_bottom(6)
            .x_label_area_size(44)
            .y_label_area_size(62)
            .build_cartesian_2d(
                Ticked {
                    range: self.x.range(),
                    ticks: x_ticks,
                },
                Ticked {
                    range: self.y.range(),
                    ticks: y_ticks,
                },
            )?;
        let x_format = |p: &f64| (self.x.format)(self.x.value(*p));
        let y_format = |p: &f64| (self.y.format)(self.y.value(*p));
        chart
            .configure_mesh()
            .bold_line_style(RGBColor(0xe4, 0xe4, 0xe4))
            .axis_style(RGBColor(0x88, 0x88, 0x88))
            .label_style(
                ("sans-serif", 15)
                    .into_font()
                    .color(&RGBColor(0x44, 0x44, 0x44)),
            )
            .axis_desc_style(
                ("sans-serif", 16)
                    .into_font()
                    .color(&RGBColor(0x33, 0x33, 0x33)),
            )
            .x_desc(self.x.title.as_str())
            .y_desc(self.y.title.as_str())
            .x_label_formatter(&x_format)
            .y_label_formatter(&y_format)
            .draw()?;

        let (x_range, y_range) = (self.x.range(), self.y.range());
        let clamp = |(x, y): (f64, f64)| {
            (
                self.x.plot(x).clamp(x_range.start, x_range.end),
                self.y.plot(y).clamp(y_range.start, y_range.end),
            )
        };
        chart.draw_series(self.bars.iter().map(|b| {
            Rectangle::new(
                [clamp((b.x.0, b.y.0)), clamp((b.x.1, b.y.1))],
                b.color.color().filled(),
            )
        }))?;
        for trace in &self.traces {
            let style = trace.color.color().stroke_width(trace.width);
            for segment in trace.points.split(Option::is_none) {
                let points: Vec<(f64, f64)> = segment.iter().flatten().map(|&p| clamp(p)).collect();
                if points.len() > 1 {
                    chart.draw_series(LineSeries::new(points.iter().copied(), style))?;
                }
                if trace.markers || points.len() == 1 {
                    chart.draw_series(
                        points
                            .iter()
                            .map(|&p| Circle::new(p, 3, trace.color.color().filled())),
                    )?;
                }
            }
        }
        root.present()?;
        Ok(())
    }
}

/// A linear coordinate with our own ticks (plotters' own key points are not round in the axis's
/// unit, and not at powers of ten on a log axis drawn as log10 of the values).
struct Ticked {
    range: Range<f64>,
    ticks: Vec<f64>,
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let share = (value - self.range.start) / (self.range.end - self.range.start);
        limit.0 + ((limit.1 - limit.0) as f64 * share).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        // Grid lines and labels at the ticks; no light lines between them.
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.range.clone()
    }
}

/// A round step (1, 2 or 5 times a power of ten) near `rough`.
fn round_step(rough: f64) -> f64 {
    let magnitude = 10f64.powf(rough.log10().floor());
    let r = rough / magnitude;
    let m = if r <= 1.0 {
        1.0
    } else if r <= 2.0 {
        2.0
    } else if r <= 5.0 {
        5.0
    } else {
        10.0
    };
    m * magnitude
}

/// A tick label: `0.05`, `2.5`, `120`, `4.5k`, `1.2M`.
pub fn format_number(v: f64) -> String {
    let a = v.abs();
    let trim = |s: String| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    };
    if a >= 1e6 {
        format!("{}M", trim(format!("{:.2}", v / 1e6)))
    } else if a >= 1e4 {
        format!("{}k", trim(format!("{:.1}", v / 1e3)))
    } else if a >= 100.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        trim(format!("{v:.2}"))
    } else {
        trim(format!("{v:.4}"))
    }
}

/// A point of the percentile axis (x = 1/(1-q)) as HdrHistogram's plotter writes it: `0%`, `90%`,
/// `99%`, `99.9%`.
pub fn percentile_label(x: f64) -> String {
    let nines = x.log10().round().max(0.0) as usize;
    let percent = 100.0 * (1.0 - 1.0 / x);
    format!("{percent:.*}%", nines.saturating_sub(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_percentiles_read_as_people_write_them() {
        assert_eq!(format_number(0.0), "0");
        assert_eq!(format_number(0.05), "0.05");
        assert_eq!(format_number(2.5), "2.5");
        assert_eq!(format_number(120.0), "120");
        assert_eq!(format_number(4500.0), "4500");
        assert_eq!(format_number(45_000.0), "45k");
        assert_eq!(format_number(1_250_000.0), "1.25M");
        let labels: Vec<String> = [1.0, 10.0, 100.0, 1e3, 1e4, 1e5]
            .into_iter()
            .map(percentile_label)
            .collect();
        assert_eq!(labels, ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"]);
    }

    #[test]
    fn axes_have_round_ticks_inside_their_range() {
        let a = Axis::linear("n", 930.0);
        assert_eq!(a.ticks, [0.0, 200.0, 400.0, 600.0, 800.0, 1000.0]);
        assert_eq!(a.hi, 1000.0);
        let l = Axis::log("ms", 0.3, 40.0);
        assert_eq!(l.ticks, [0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0]);
        assert_eq!((l.lo, l.hi), (0.2, 50.0), "the ends are ticks");
        let narrow = Axis::log("ms", 0.31, 0.4);
        assert_eq!(narrow.ticks, [0.2, 0.3, 0.4, 0.5]);
        let wide = Axis::log("ms", 0.01, 3000.0);
        assert_eq!(wide.ticks, [0.01, 0.1, 1.0, 10.0, 100.0, 1000.0]);
        // Degenerate input still gives a drawable range.
        let flat = Axis::log("ms", 2.0, 2.0);
        assert!(flat.hi > flat.lo);
        assert!(Axis::linear("n", 0.0).hi > 0.0);
    }

    #[test]
    fn a_plot_is_an_svg_with_its_lines_bars_and_labels_and_no_nan() {
        let plot = Plot {
            x: Axis::linear("time <s>", 10.0),
            y: Axis::log("latency & ms", 0.2, 30.0),
            traces: vec![Trace {
                color: PALETTE[0],
                points: vec![Some((1.0, 0.5)), Some((2.0, 1.0)), None, Some((4.0, 20.0))],
                markers: false,
                width: 2,
            }],
            bars: vec![Bar {
                color: PALETTE[1],
                x: (5.0, 6.0),
                y: (0.2, 3.0),
            }],
        };
        let svg = plot.svg().unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
        assert!(svg.contains("<polyline"), "a line");
        assert!(svg.contains("<circle"), "the lone point gets a marker");
        assert!(svg.contains("<rect"), "the bar");
        assert!(svg.contains("time &lt;s&gt;"), "titles are escaped");
        assert!(svg.contains("latency &amp; ms"));
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
    }
}
