//! Values drawn from the front of a fuzz input, for bodies that need a choice (a mode, a split
//! point, a mask) besides the bytes they parse. An exhausted input yields zeros and empty slices,
//! so every input, the empty one included, is a valid run.

/// A cursor over a fuzz input that hands out small values and slices.
#[derive(Debug, Clone)]
pub struct Unstructured<'a> {
    data: &'a [u8],
}

impl<'a> Unstructured<'a> {
    pub fn new(data: &'a [u8]) -> Unstructured<'a> {
        Unstructured { data }
    }

    /// The next byte, or 0 when none is left.
    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    pub fn bool(&mut self) -> bool {
        self.byte() & 1 == 1
    }

    /// A number below `n` (0 when `n` is 0), from one byte: choices, not magnitudes.
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { self.byte() as usize % n }
    }

    /// Four bytes, zero-filled when the input runs out.
    pub fn array4(&mut self) -> [u8; 4] {
        [self.byte(), self.byte(), self.byte(), self.byte()]
    }

    /// Up to `n` bytes.
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (taken, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        taken
    }

    /// Everything not drawn yet.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// Cut points for feeding `len` bytes in pieces, drawn from `u`: increasing, each in `1..len`.
pub fn cuts(u: &mut Unstructured, len: usize) -> Vec<usize> {
    let mut cuts: Vec<usize> = (0..u.below(6))
        .map(|_| {
            let at = usize::from(u.byte()) << 8 | usize::from(u.byte());
            if len > 1 { 1 + at % (len - 1) } else { 0 }
        })
        .filter(|&at| at > 0)
        .collect();
    cuts.sort_unstable();
    cuts.dedup();
    cuts
}

/// `data` cut at `cuts` (as [`cuts`] returns them).
pub fn pieces<'d>(data: &'d [u8], cuts: &[usize]) -> Vec<&'d [u8]> {
    let mut pieces = Vec::with_capacity(cuts.len() + 1);
    let mut from = 0;
    for &at in cuts {
        pieces.push(&data[from..at]);
        from = at;
    }
    pieces.push(&data[from..]);
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exhausted_input_yields_zeros() {
        let mut u = Unstructured::new(&[7, 9]);
        assert_eq!((u.byte(), u.below(4), u.byte(), u.below(0)), (7, 1, 0, 0));
        assert_eq!(u.array4(), [0; 4]);
        assert!(u.take(3).is_empty() && u.rest().is_empty() && u.is_empty());
    }

    #[test]
    fn pieces_put_back_together_are_the_data() {
        let data = b"0123456789";
        for seed in 0..200u8 {
            let choice = [
                seed,
                seed.wrapping_mul(7),
                3,
                seed,
                1,
                200,
                9,
                seed ^ 0x55,
                4,
                4,
            ];
            let cuts = cuts(&mut Unstructured::new(&choice), data.len());
            assert!(cuts.windows(2).all(|w| w[0] < w[1]));
            assert!(cuts.iter().all(|&c| (1..data.len()).contains(&c)));
            assert_eq!(pieces(data, &cuts).concat(), data);
        }
    }
}
