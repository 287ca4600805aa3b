//! In-band DTMF detection (Goertzel) for peers that send key presses as audio tones, as phones
//! do when no telephone-event payload was negotiated.
//!
//! The 8 kHz signal is cut into 102-sample blocks (12.75 ms, the block size of spandsp and
//! Asterisk). Per block, the energy at the four row and four column frequencies is measured
//! with the Goertzel algorithm and a digit is *seen* when:
//! - the signal is loud enough,
//! - the strongest row and column tones carry most of the block's energy (speech and music
//!   spread theirs),
//! - each beats the runner-up of its group by 6 dB,
//! - the twist (row vs column level) is within 8 dB normal / 4 dB reverse (ITU-T Q.24).
//!
//! A digit is reported once it is seen in two consecutive blocks, and may be reported again
//! only after two blocks without it, so a 40 ms key press counts once and a 40 ms pause
//! separates presses.

/// Block length in samples at 8 kHz.
const BLOCK: usize = 102;
const ROWS: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
const COLUMNS: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
const KEYS: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];
/// Mean power (per sample) below which a block is too quiet: two tones of amplitude 200, about
/// -41 dBm0 each (ITU-T Q.24 asks for acceptance down to -25 dBm0 per tone).
const MIN_MEAN_POWER: f32 = 40_000.0;
/// Share of the block's energy the two tones must hold.
const MIN_TONE_SHARE: f32 = 0.7;
/// 6 dB over the second strongest tone of the same group.
const MIN_PEAK_RATIO: f32 = 4.0;
/// Column louder than row by at most 8 dB (normal twist) ...
const MAX_NORMAL_TWIST: f32 = 6.3;
/// ... and row louder than column by at most 4 dB (reverse twist).
const MAX_REVERSE_TWIST: f32 = 2.5;
/// Consecutive blocks needed to report a digit, and to allow the same digit again.
const HITS: u8 = 2;

/// Streaming in-band DTMF detector for 8 kHz PCM.
#[derive(Debug, Clone)]
pub struct InbandDetector {
    coefficients: [f32; 8],
    block: Vec<f32>,
    /// Digit seen in the previous block and how many blocks in a row.
    candidate: Option<char>,
    streak: u8,
    /// Digit reported and not yet released, with the count of blocks without it.
    reported: Option<char>,
    misses: u8,
}

impl Default for InbandDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl InbandDetector {
    /// A detector with no history.
    pub fn new() -> Self {
        let mut coefficients = [0.0; 8];
        for (c, f) in coefficients.iter_mut().zip(ROWS.iter().chain(&COLUMNS)) {
            *c = 2.0 * (std::f32::consts::TAU * f / 8000.0).cos();
        }
        InbandDetector {
            coefficients,
            block: Vec::with_capacity(BLOCK),
            candidate: None,
            streak: 0,
            reported: None,
            misses: 0,
        }
    }

    /// Feeds 8 kHz samples, appending each newly pressed digit to `digits`.
    pub fn process(&mut self, samples: &[i16], digits: &mut Vec<char>) {
        for &s in samples {
            self.block.push(f32::from(s));
            if self.block.len() == BLOCK {
                let seen = self.classify_block();
                self.block.clear();
                digits.extend(self.debounce(seen));
            }
        }
    }

    fn debounce(&mut self, seen: Option<char>) -> Option<char> {
        if seen == self.candidate {
            self.streak = self.streak.saturating_add(1);
        } else {
            self.candidate = seen;
            self.streak = 1;
        }
        if let Some(reported) = self.reported {
            if seen == Some(reported) {
                self.misses = 0;
                return None;
            }
            self.misses += 1;
            if self.misses < HITS {
                return None;
            }
            self.reported = None;
        }
        let digit = seen.filter(|_| self.streak >= HITS)?;
        self.reported = Some(digit);
        self.misses = 0;
        Some(digit)
    }

    fn classify_block(&self) -> Option<char> {
        let energy: f32 = self.block.iter().map(|x| x * x).sum();
        if energy < MIN_MEAN_POWER * BLOCK as f32 {
            return None;
        }
        let mut power = [0.0f32; 8];
        for (p, &coeff) in power.iter_mut().zip(&self.coefficients) {
            *p = goertzel_power(&self.block, coeff);
        }
        let (row, row_power, row_second) = strongest(&power[..4]);
        let (col, col_power, col_second) = strongest(&power[4..]);
        // Goertzel power of a sine of amplitude A is (A N / 2)^2 while its energy is A^2 N / 2,
        // so 2 P / N is the energy share of that tone.
        let share = 2.0 * (row_power + col_power) / (BLOCK as f32 * energy);
        let twist_ok =
            col_power <= row_power * MAX_NORMAL_TWIST && row_power <= col_power * MAX_REVERSE_TWIST;
        let peaks_ok =
            row_power >= row_second * MIN_PEAK_RATIO && col_power >= col_second * MIN_PEAK_RATIO;
        (share >= MIN_TONE_SHARE && twist_ok && peaks_ok).then_some(KEYS[row][col])
    }
}

fn goertzel_power(block: &[f32], coeff: f32) -> f32 {
    let (mut s1, mut s2) = (0.0f32, 0.0f32);
    for &x in block {
        let s0 = x + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    (s1 * s1 + s2 * s2 - coeff * s1 * s2).max(0.0)
}

/// Index and power of the strongest entry, and the power of the runner-up.
fn strongest(powers: &[f32]) -> (usize, f32, f32) {
    let mut best = 0;
    for (i, &p) in powers.iter().enumerate() {
        if p > powers[best] {
            best = i;
        }
    }
    let second = powers
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != best)
        .map(|(_, &p)| p)
        .fold(0.0f32, f32::max);
    (best, powers[best], second)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_frequencies(digit: char) -> (f32, f32) {
        for (r, row) in KEYS.iter().enumerate() {
            if let Some(c) = row.iter().position(|&k| k == digit) {
                return (ROWS[r], COLUMNS[c]);
            }
        }
        panic!("not a key: {digit}");
    }

    /// `ms` of a key's dual tone, each tone at `row_amp` / `col_amp`.
    fn key(digit: char, ms: usize, row_amp: f32, col_amp: f32) -> Vec<i16> {
        let (fr, fc) = key_frequencies(digit);
        (0..ms * 8)
            .map(|n| {
                let t = n as f32 / 8000.0;
                let x = row_amp * (std::f32::consts::TAU * fr * t).sin()
                    + col_amp * (std::f32::consts::TAU * fc * t).sin();
                x as i16
            })
            .collect()
    }

    fn silence(ms: usize) -> Vec<i16> {
        vec![0; ms * 8]
    }

    fn detect(signal: &[i16]) -> Vec<char> {
        let mut detector = InbandDetector::new();
        let mut digits = Vec::new();
        // Feed in 20 ms frames, as the session does.
        for frame in signal.chunks(160) {
            detector.process(frame, &mut digits);
        }
        digits
    }

    #[test]
    fn every_key_is_detected_once() {
        for digit in "0123456789*#ABCD".chars() {
            let mut signal = key(digit, 100, 6000.0, 6000.0);
            signal.extend(silence(100));
            assert_eq!(detect(&signal), vec![digit], "key {digit}");
        }
    }

    #[test]
    fn a_dialled_sequence_with_short_pauses() {
        let mut signal = Vec::new();
        for digit in "1590#".chars() {
            signal.extend(key(digit, 50, 4000.0, 5000.0));
            signal.extend(silence(45));
        }
        assert_eq!(detect(&signal), "1590#".chars().collect::<Vec<_>>());
    }

    #[test]
    fn long_press_counts_once_and_same_key_twice_counts_twice() {
        let mut signal = key('7', 1000, 5000.0, 5000.0);
        signal.extend(silence(60));
        signal.extend(key('7', 60, 5000.0, 5000.0));
        assert_eq!(detect(&signal), vec!['7', '7']);
    }

    #[test]
    fn detected_in_noise() {
        let mut seed = 42u32;
        let mut signal = key('3', 120, 3000.0, 3000.0);
        for s in &mut signal {
            // Uniform noise ~20 dB below the tones (LCG, deterministic).
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let noise = ((seed >> 16) as f32 / 65536.0 - 0.5) * 1000.0;
            *s = s.saturating_add(noise as i16);
        }
        assert_eq!(detect(&signal), vec!['3']);
    }

    #[test]
    fn rejects_non_dtmf() {
        let tone = |f: f32, amp: f32| {
            (0..4000)
                .map(move |n| amp * (std::f32::consts::TAU * f * n as f32 / 8000.0).sin())
                .collect::<Vec<f32>>()
        };
        // A single tone on a row frequency, a dial-tone-like 350+440 Hz, a vowel-like harmonic stack.
        let single: Vec<i16> = tone(697.0, 8000.0).iter().map(|&x| x as i16).collect();
        assert!(detect(&single).is_empty());
        let dial: Vec<i16> = tone(350.0, 5000.0)
            .iter()
            .zip(tone(440.0, 5000.0))
            .map(|(a, b)| (a + b) as i16)
            .collect();
        assert!(detect(&dial).is_empty());
        let mut vowel = vec![0.0f32; 4000];
        for h in 1..12 {
            for (v, x) in vowel
                .iter_mut()
                .zip(tone(120.0 * h as f32, 2500.0 / h as f32))
            {
                *v += x;
            }
        }
        let vowel: Vec<i16> = vowel.iter().map(|&x| x as i16).collect();
        assert!(detect(&vowel).is_empty());
        // Too short (15 ms), too quiet, and twist beyond 8 dB.
        assert!(detect(&key('1', 15, 6000.0, 6000.0)).is_empty());
        assert!(detect(&key('1', 100, 30.0, 30.0)).is_empty());
        assert!(detect(&key('1', 100, 1000.0, 8000.0)).is_empty());
    }
}
