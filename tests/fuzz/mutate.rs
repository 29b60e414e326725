//! The stable runner's mutation engine: a seeded generator of inputs from a seed corpus and a
//! dictionary, without coverage feedback. The same seed gives the same inputs in the same
//! order, so a failure is reproduced by its seed (or by the input file the runner writes).
//!
//! Mutations are the classic ones: bit flips, random and interesting bytes, interesting
//! integers in either byte order (the lengths where WebSocket's length encoding changes, 2^31,
//! 2^63, the extremes), decimal numbers rewritten, bytes inserted, deleted, duplicated or
//! swapped, dictionary tokens inserted or written over, splices with another seed, and
//! truncation. Each input stacks one to eight of them.

use fastrand::Rng;

/// Integers that sit on boundaries parsers care about.
const INTERESTING: [u64; 16] = [
    0,
    1,
    0x7f,
    0x80,
    0xff,
    125,
    126,
    127,
    0xffff,
    0x1_0000,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    1 << 53,
    1 << 63,
    u64::MAX,
];

/// Decimal numbers that sit on boundaries parsers of text care about.
const INTERESTING_DECIMALS: [&str; 10] = [
    "0",
    "-1",
    "125",
    "126",
    "65536",
    "4294967296",
    "9007199254740993",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999",
];

/// Makes inputs from a corpus; `max_len` bounds every input it returns.
pub struct Mutator {
    rng: Rng,
    pub max_len: usize,
    dictionary: Vec<Vec<u8>>,
}

impl Mutator {
    pub fn new(seed: u64, max_len: usize, dictionary: Vec<Vec<u8>>) -> Mutator {
        Mutator {
            rng: Rng::with_seed(seed),
            max_len,
            dictionary,
        }
    }

    /// A new input: `base` with one to eight mutations, `others` giving splice material.
    pub fn mutate(&mut self, base: &[u8], others: &[Vec<u8>]) -> Vec<u8> {
        let mut data = base.to_vec();
        for _ in 0..self.rng.usize(1..=8) {
            self.mutate_once(&mut data, others);
        }
        data.truncate(self.max_len);
        data
    }

    /// Picks an index below `len` (which must not be 0).
    pub fn index(&mut self, len: usize) -> usize {
        self.rng.usize(..len)
    }

    fn mutate_once(&mut self, data: &mut Vec<u8>, others: &[Vec<u8>]) {
        if data.is_empty() {
            self.insert_random(data);
            return;
        }
        match self.rng.u8(..14) {
            0 => {
                let at = self.index(data.len());
                data[at] ^= 1 << self.rng.u8(..8);
            }
            1 => {
                let at = self.index(data.len());
                data[at] = self.rng.u8(..);
            }
            2 => {
                let at = self.index(data.len());
                data[at] = INTERESTING[self.index(INTERESTING.len())] as u8;
            }
            3 => self.write_integer(data),
            4 => self.rewrite_decimal(data),
            5 => self.insert_random(data),
            6 | 7 => self.use_dictionary(data),
            8 => {
                let (from, to) = self.range(data.len());
                data.drain(from..to);
            }
            9 => {
                let (from, to) = self.range(data.len());
                let copy = data[from..to].to_vec();
                let at = self.rng.usize(..=data.len());
                data.splice(at..at, copy);
            }
            10 => {
                let (a, b) = (self.index(data.len()), self.index(data.len()));
                data.swap(a, b);
            }
            11 | 12 => self.splice(data, others),
            _ => data.truncate(self.index(data.len())),
        }
    }

    /// A range of at most 32 bytes inside `len` bytes (`len` > 0).
    fn range(&mut self, len: usize) -> (usize, usize) {
        let from = self.index(len);
        let to = (from + 1 + self.rng.usize(..32)).min(len);
        (from, to)
    }

    fn insert_random(&mut self, data: &mut Vec<u8>) {
        let at = self.rng.usize(..=data.len());
        let bytes: Vec<u8> = (0..self.rng.usize(1..=8))
            .map(|_| self.rng.u8(..))
            .collect();
        data.splice(at..at, bytes);
    }

    /// An interesting integer in 1, 2, 4 or 8 bytes, big- or little-endian, over the data.
    fn write_integer(&mut self, data: &mut [u8]) {
        let value = INTERESTING[self.index(INTERESTING.len())];
        let width = [1, 2, 4, 8][self.index(4)];
        let bytes = if self.rng.bool() {
            value.to_be_bytes()[8 - width..].to_vec()
        } else {
            value.to_le_bytes()[..width].to_vec()
        };
        let at = self.index(data.len());
        let end = (at + width).min(data.len());
        data[at..end].copy_from_slice(&bytes[..end - at]);
    }

    /// A run of ASCII digits replaced by an interesting decimal number.
    fn rewrite_decimal(&mut self, data: &mut Vec<u8>) {
        let starts: Vec<usize> = (0..data.len())
            .filter(|&i| data[i].is_ascii_digit() && (i == 0 || !data[i - 1].is_ascii_digit()))
            .collect();
        if starts.is_empty() {
            return self.write_integer(data);
        }
        let from = starts[self.index(starts.len())];
        let to = from
            + data[from..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
        let number = INTERESTING_DECIMALS[self.index(INTERESTING_DECIMALS.len())];
        data.splice(from..to, number.bytes());
    }

    fn use_dictionary(&mut self, data: &mut Vec<u8>) {
        if self.dictionary.is_empty() {
            return self.insert_random(data);
        }
        let pick = self.index(self.dictionary.len());
        let token = self.dictionary[pick].clone();
        let at = self.rng.usize(..=data.len());
        if self.rng.bool() {
            data.splice(at..at, token);
        } else {
            let end = (at + token.len()).min(data.len());
            data.splice(at..end, token);
        }
    }

    /// Part of another seed put in: its tail after a cut of this one, or a piece inserted.
    fn splice(&mut self, data: &mut Vec<u8>, others: &[Vec<u8>]) {
        let Some(other) = (!others.is_empty())
            .then(|| &others[self.index(others.len())])
            .filter(|o| !o.is_empty())
        else {
            return self.insert_random(data);
        };
        if self.rng.bool() {
            let cut = self.rng.usize(..=data.len());
            data.truncate(cut);
            data.extend_from_slice(&other[self.index(other.len())..]);
        } else {
            let (from, to) = self.range(other.len());
            let at = self.rng.usize(..=data.len());
            data.splice(at..at, other[from..to].iter().copied());
        }
    }
}

/// Reads a dictionary in the format libFuzzer and AFL share: one `"token"` per line, optionally
/// `name="token"`, with `\\`, `\"` and `\xNN` escapes; `#` starts a comment line.
pub fn parse_dictionary(text: &str) -> Result<Vec<Vec<u8>>, String> {
    let mut tokens = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let quoted = line
            .find('"')
            .map(|open| &line[open..])
            .filter(|q| q.len() >= 2 && q.ends_with('"'))
            .ok_or_else(|| format!("line {}: no quoted token in {line:?}", number + 1))?;
        tokens.push(
            unescape(&quoted[1..quoted.len() - 1])
                .map_err(|e| format!("line {}: {e}", number + 1))?,
        );
    }
    Ok(tokens)
}

fn unescape(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        match bytes.next() {
            Some(b'\\') => out.push(b'\\'),
            Some(b'"') => out.push(b'"'),
            Some(b'x') => {
                let hex: Vec<u8> = bytes.by_ref().take(2).collect();
                let value = std::str::from_utf8(&hex)
                    .ok()
                    .filter(|h| h.len() == 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("bad \\x escape in {text:?}"))?;
                out.push(value);
            }
            other => return Err(format!("unknown escape {other:?} in {text:?}")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus() -> Vec<Vec<u8>> {
        vec![
            b"GET / HTTP/1.1\r\n\r\n".to_vec(),
            vec![0x81, 0x05, b'h', b'e', b'l', b'l', b'o'],
            Vec::new(),
        ]
    }

    #[test]
    fn the_same_seed_makes_the_same_inputs() {
        let dict = vec![b"{{".to_vec()];
        let run = |seed| {
            let mut m = Mutator::new(seed, 64, dict.clone());
            let seeds = corpus();
            (0..500)
                .map(|i| m.mutate(&seeds[i % 3], &seeds))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn inputs_stay_within_the_length_bound_and_vary() {
        let seeds = corpus();
        let mut m = Mutator::new(1, 24, vec![b"\xff\xfe".to_vec()]);
        let mut distinct = std::collections::HashSet::new();
        for i in 0..5_000 {
            let input = m.mutate(&seeds[i % seeds.len()], &seeds);
            assert!(input.len() <= 24, "{} bytes", input.len());
            distinct.insert(input);
        }
        assert!(
            distinct.len() > 4_000,
            "only {} distinct inputs",
            distinct.len()
        );
    }

    #[test]
    fn every_kind_of_mutation_shows_up() {
        let seeds = vec![b"len 125 of 7 bytes".to_vec()];
        let mut m = Mutator::new(3, 256, vec![b"TOKEN".to_vec()]);
        let outputs: Vec<Vec<u8>> = (0..5_000).map(|_| m.mutate(&seeds[0], &seeds)).collect();
        let contains = |needle: &[u8]| {
            outputs
                .iter()
                .any(|o| o.windows(needle.len()).any(|w| w == needle))
        };
        assert!(contains(b"TOKEN"), "dictionary tokens");
        assert!(contains(b"18446744073709551616"), "decimal rewrites");
        assert!(contains(&[0x7f, 0xff, 0xff, 0xff]), "big-endian integers");
        assert!(
            contains(&[0xff, 0xff, 0xff, 0x7f]),
            "little-endian integers"
        );
        assert!(
            outputs.iter().any(|o| o.len() < 5),
            "truncation and deletion"
        );
        assert!(
            outputs.iter().any(|o| o.len() > 40),
            "insertion and duplication"
        );
    }

    #[test]
    fn dictionaries_read_the_libfuzzer_format() {
        let text = "# WebSocket\nlen126=\"\\x7e\"\n\"a\\\"b\\\\\"\n\n  \"{{\"\n";
        assert_eq!(
            parse_dictionary(text).unwrap(),
            [vec![0x7e], b"a\"b\\".to_vec(), b"{{".to_vec()]
        );
        assert!(parse_dictionary("token").unwrap_err().contains("line 1"));
        assert!(parse_dictionary("\"\\x4\"").is_err());
        assert!(parse_dictionary("\"\\n\"").is_err());
    }
}
