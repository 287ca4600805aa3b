//! Rational-ratio resampling with a Kaiser-windowed sinc (polyphase FIR).
//!
//! The ratio `to/from` is reduced to `up/down`; output sample `k` sits at input position
//! `k * down / up`, whose fractional part selects one of `up` precomputed filter phases. The
//! low-pass cutoff is set just below the Nyquist frequency of the *lower* of the two rates, so
//! downsampling removes what would alias (a 6 kHz tone does not fold into 2 kHz at 8 kHz).
//!
//! Memory is bounded whatever the rates: rates outside [`MIN_RATE`]..=[`MAX_RATE`] produce no
//! output, the filter has at most [`MAX_TAPS`] taps per phase (fewer zero crossings when a large
//! downsampling ratio would need more), and an awkward ratio (`up` over [`MAX_PHASES`], e.g.
//! 44,101 Hz to 8 kHz) uses [`MAX_PHASES`] phases, each output taking the nearest one (timing
//! error under 1/2048 of an input sample, below the 16-bit noise floor for voice).
//!
//! [`Resampler`] is streaming (it keeps the last filter span of input between calls) so a live
//! codec path can feed it 20 ms at a time without clicks at frame boundaries; [`resample`] runs a
//! whole buffer through it with no delay.

/// Zero crossings of the sinc on each side, counted at the lower rate. More = steeper transition.
const HIGH_QUALITY_ZERO_CROSSINGS: usize = 48;
/// Kaiser window shape; 8.6 gives ~85 dB stop-band attenuation.
const KAISER_BETA: f64 = 8.6;
/// Cutoff as a fraction of the lower Nyquist frequency (3.76 kHz for 8 kHz output).
const HIGH_QUALITY_CUTOFF: f64 = 0.94;

/// Lowest rate the resamplers accept (Hz); below it they produce nothing.
pub const MIN_RATE: u32 = 1000;
/// Highest rate the resamplers accept (Hz); above it they produce nothing.
pub const MAX_RATE: u32 = 384_000;
/// Most filter taps per phase.
pub const MAX_TAPS: usize = 1024;
/// Most filter phases (the filter table holds at most `MAX_PHASES * MAX_TAPS` coefficients,
/// 4 MiB; in practice a few hundred KiB).
pub const MAX_PHASES: usize = 1024;

/// A streaming resampler between two fixed rates.
#[derive(Debug, Clone)]
pub struct Resampler {
    up: usize,
    down: usize,
    /// Taps per phase (even).
    taps: usize,
    /// `phases` phases of `taps` coefficients each, flattened.
    filter: Vec<f32>,
    /// Filter phases: `up`, or [`MAX_PHASES`] when `up` is larger (nearest phase used).
    phases: usize,
    /// Input not yet fully consumed; index 0 is the oldest kept sample.
    history: Vec<f32>,
    /// Input index (into `history`) of the next output's integer position.
    position: usize,
    /// Fractional part of the next output's position, in units of `1/up`.
    phase: usize,
}

impl Resampler {
    /// A high-quality resampler (for prompts). It delays the signal by half the filter span,
    /// so that every `n` input samples give exactly `n * to / from` output samples once the ratio
    /// divides evenly (e.g. 160 samples at 8 kHz always give 960 at 48 kHz).
    ///
    /// A rate outside [`MIN_RATE`]..=[`MAX_RATE`] yields a resampler that outputs nothing.
    pub fn new(from_hz: u32, to_hz: u32) -> Self {
        Self::with_quality(
            from_hz,
            to_hz,
            HIGH_QUALITY_ZERO_CROSSINGS,
            HIGH_QUALITY_CUTOFF,
        )
    }

    /// A cheaper resampler for live 20 ms frames (voice band only needs ~3.4 kHz).
    pub(crate) fn new_live(from_hz: u32, to_hz: u32) -> Self {
        Self::with_quality(from_hz, to_hz, 16, 0.9)
    }

    fn with_quality(from_hz: u32, to_hz: u32, zero_crossings: usize, cutoff: f64) -> Self {
        let valid = |hz: u32| (MIN_RATE..=MAX_RATE).contains(&hz);
        if !valid(from_hz) || !valid(to_hz) {
            return Resampler {
                up: 0,
                down: 0,
                taps: 2,
                filter: Vec::new(),
                phases: 0,
                history: Vec::new(),
                position: 0,
                phase: 0,
            };
        }
        let g = gcd(from_hz, to_hz);
        let (up, down) = ((to_hz / g) as usize, (from_hz / g) as usize);
        // Normalised to the input rate: 1.0 = input Nyquist.
        let fc = cutoff * (up as f64 / down as f64).min(1.0);
        let half = ((zero_crossings as f64 / fc).ceil() as usize).clamp(1, MAX_TAPS / 2);
        let taps = 2 * half;
        let phases = up.min(MAX_PHASES);
        let mut filter = Vec::with_capacity(phases * taps);
        for p in 0..phases {
            // Exact phases when there are `up` of them; else each covers 1/phases of a sample
            // and is centred in it.
            let frac = if phases == up {
                p as f64 / up as f64
            } else {
                (p as f64 + 0.5) / phases as f64
            };
            for j in 0..taps {
                // Tap j multiplies input (i - half + 1 + j); its distance from the output position
                // (i + frac) is d = frac + half - 1 - j (in input samples).
                let d = frac + half as f64 - 1.0 - j as f64;
                filter.push((fc * sinc(fc * d) * kaiser(d / half as f64)) as f32);
            }
        }
        Resampler {
            up,
            down,
            taps,
            filter,
            phases,
            // `taps - 1` leading zeros with the first output centred `half` samples before the
            // first real input: the filter's delay, which keeps the output count per call exact.
            history: vec![0.0; taps - 1],
            position: half - 1,
            phase: 0,
        }
    }

    /// Delay the streaming resampler adds, in input samples.
    pub fn delay_input_samples(&self) -> usize {
        self.taps / 2
    }

    /// Feeds `input`, appending every output sample that is now computable to `out`.
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        if self.up == 0 || self.down == 0 {
            return;
        }
        self.history.extend(input.iter().map(|&s| f32::from(s)));
        let half = self.taps / 2;
        // Output at integer position i needs history[i - half + 1 ..= i + half].
        while self.position + half < self.history.len() {
            let start = self.position + 1 - half;
            let window = &self.history[start..start + self.taps];
            // `phase < up`, so the row is below `phases`.
            let row = self.phase * self.phases / self.up;
            let coefficients = &self.filter[row * self.taps..][..self.taps];
            let acc: f32 = window.iter().zip(coefficients).map(|(x, h)| x * h).sum();
            out.push(acc.round().clamp(f32::from(i16::MIN), f32::from(i16::MAX)) as i16);
            self.phase += self.down;
            self.position += self.phase / self.up;
            self.phase %= self.up;
        }
        // Drop input no future output can reach.
        let keep_from = (self.position + 1)
            .saturating_sub(half)
            .min(self.history.len());
        self.history.drain(..keep_from);
        self.position -= keep_from;
    }
}

/// Resamples a whole buffer from `from_hz` to `to_hz`, keeping its timing: the output holds
/// `ceil(len * to / from)` samples and sample `k` corresponds to input time `k * from / to`.
/// Rates outside [`MIN_RATE`]..=[`MAX_RATE`] give an empty buffer (so the output is at most
/// `MAX_RATE / MIN_RATE` times the input).
pub fn resample(samples: &[i16], from_hz: u32, to_hz: u32) -> Vec<i16> {
    let valid = |hz: u32| (MIN_RATE..=MAX_RATE).contains(&hz);
    if !valid(from_hz) || !valid(to_hz) {
        return Vec::new();
    }
    if from_hz == to_hz {
        return samples.to_vec();
    }
    let wanted = (samples.len() as u64 * u64::from(to_hz)).div_ceil(u64::from(from_hz)) as usize;
    let mut resampler = Resampler::new(from_hz, to_hz);
    // Cancel the streaming delay: start the first output at the first input sample.
    let half = resampler.taps / 2;
    resampler.position += half;
    let mut out = Vec::with_capacity(wanted + 1);
    resampler.process(samples, &mut out);
    // Flush the tail with zeros so the last input samples reach the output.
    resampler.process(&vec![0; half + 1], &mut out);
    out.truncate(wanted);
    out
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

fn sinc(x: f64) -> f64 {
    if x.abs() < 1e-12 {
        1.0
    } else {
        let px = std::f64::consts::PI * x;
        px.sin() / px
    }
}

/// Kaiser window at `x` in [-1, 1] (0 outside).
fn kaiser(x: f64) -> f64 {
    if x.abs() > 1.0 {
        return 0.0;
    }
    bessel_i0(KAISER_BETA * (1.0 - x * x).sqrt()) / bessel_i0(KAISER_BETA)
}

/// Modified Bessel function of the first kind, order 0 (power series; converges fast for β < 20).
fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let quarter_x2 = x * x / 4.0;
    for k in 1..50 {
        term *= quarter_x2 / (k * k) as f64;
        sum += term;
        if term < sum * 1e-12 {
            break;
        }
    }
    sum
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sine(freq: f64, rate: u32, seconds: f64, amplitude: f64) -> Vec<i16> {
        let n = (f64::from(rate) * seconds) as usize;
        (0..n)
            .map(|i| {
                (amplitude * (std::f64::consts::TAU * freq * i as f64 / f64::from(rate)).sin())
                    as i16
            })
            .collect()
    }

    /// Amplitude of `freq` in `samples` (Goertzel), normalised so a full-scale sine gives ~its peak.
    pub(crate) fn goertzel_amplitude(samples: &[i16], rate: u32, freq: f64) -> f64 {
        let w = std::f64::consts::TAU * freq / f64::from(rate);
        let coeff = 2.0 * w.cos();
        let (mut s1, mut s2) = (0.0f64, 0.0f64);
        for &x in samples {
            let s0 = f64::from(x) + coeff * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
        2.0 * power.max(0.0).sqrt() / samples.len() as f64
    }

    /// Rising zero crossings per second.
    pub(crate) fn crossing_frequency(samples: &[i16], rate: u32) -> f64 {
        let crossings = samples.windows(2).filter(|w| w[0] < 0 && w[1] >= 0).count();
        crossings as f64 * f64::from(rate) / samples.len() as f64
    }

    #[test]
    fn keeps_frequency_and_duration_down_and_up() {
        for from in [32000, 16000, 44100, 48000] {
            let input = sine(1000.0, from, 1.0, 10000.0);
            let down = resample(&input, from, 8000);
            assert_eq!(down.len(), 8000, "{from} -> 8000 keeps 1 s");
            let f = crossing_frequency(&down[400..7600], 8000);
            assert!((f - 1000.0).abs() < 5.0, "{from} -> 8000: {f} Hz");
            let a = goertzel_amplitude(&down[400..7600], 8000, 1000.0);
            assert!((a - 10000.0).abs() < 300.0, "{from} -> 8000 amplitude {a}");

            let back = resample(&down, 8000, from);
            assert_eq!(back.len(), from as usize, "8000 -> {from} keeps 1 s");
            let f = crossing_frequency(&back[from as usize / 20..from as usize * 19 / 20], from);
            assert!((f - 1000.0).abs() < 5.0, "8000 -> {from}: {f} Hz");
        }
    }

    #[test]
    fn passband_tone_survives_and_alias_is_removed() {
        let pass = resample(&sine(3500.0, 32000, 0.5, 10000.0), 32000, 8000);
        let a = goertzel_amplitude(&pass[200..3800], 8000, 3500.0);
        assert!(a > 8900.0, "3.5 kHz kept: {a}");

        // 6 kHz would fold to 2 kHz at 8 kHz without the anti-aliasing filter.
        let alias = resample(&sine(6000.0, 32000, 0.5, 10000.0), 32000, 8000);
        let a = goertzel_amplitude(&alias[200..3800], 8000, 2000.0);
        assert!(a < 10.0, "6 kHz removed (alias at 2 kHz): {a}");
        // Away from the edges, where switching the tone on and off is itself broadband.
        let interior = &alias[200..3800];
        let rms = (interior.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / 3600.0).sqrt();
        assert!(rms < 20.0, "6 kHz residue rms {rms}");
    }

    #[test]
    fn timing_is_preserved() {
        // An impulse at input sample 3200 (0.1 s at 32 kHz) peaks at output sample 800.
        let mut impulse = vec![0i16; 32000];
        impulse[3200] = 30000;
        let out = resample(&impulse, 32000, 8000);
        let peak = (0..out.len())
            .max_by_key(|&i| out[i].unsigned_abs())
            .unwrap();
        assert_eq!(peak, 800);
    }

    #[test]
    fn streaming_frames_match_ratio_and_whole_buffer() {
        let input = sine(700.0, 8000, 0.2, 8000.0);
        let mut streaming = Resampler::new_live(8000, 48000);
        let mut out = Vec::new();
        for frame in input.chunks(160) {
            let before = out.len();
            streaming.process(frame, &mut out);
            assert_eq!(out.len() - before, 960, "each 20 ms frame yields 20 ms");
        }
        let mut back = Resampler::new_live(48000, 8000);
        let mut down = Vec::new();
        for frame in out.chunks(960) {
            let before = down.len();
            back.process(frame, &mut down);
            assert_eq!(down.len() - before, 160);
        }
        // After the round trip (two filter delays) the tone is intact.
        let f = crossing_frequency(&down[400..], 8000);
        assert!((f - 700.0).abs() < 10.0, "{f}");
    }

    #[test]
    fn degenerate_rates() {
        assert_eq!(resample(&[1, 2, 3], 8000, 8000), vec![1, 2, 3]);
        assert!(resample(&[1, 2, 3], 0, 8000).is_empty());
        assert!(resample(&[1, 2, 3], 8000, 0).is_empty());
        assert!(resample(&[], 16000, 8000).is_empty());
        // Absurd rates: nothing, and no allocation on their account.
        for (from, to) in [
            (1, 8000),
            (4_000_000_000, 8000),
            (8000, u32::MAX),
            (999, 999),
        ] {
            assert!(resample(&[1; 1000], from, to).is_empty(), "{from} -> {to}");
            let mut r = Resampler::new(from, to);
            assert!(r.filter.is_empty() && r.history.is_empty());
            let mut out = Vec::new();
            r.process(&[1; 1000], &mut out);
            assert!(out.is_empty());
        }
    }

    #[test]
    fn filter_is_bounded_for_awkward_ratios() {
        for (from, to) in [
            (MAX_RATE, 8000),
            (44_101, 8000),
            (MIN_RATE, MAX_RATE),
            (383_999, 8000),
            (8000, 383_999),
        ] {
            let r = Resampler::new(from, to);
            assert!(r.taps <= MAX_TAPS, "{from} -> {to}: {} taps", r.taps);
            assert!(r.phases <= MAX_PHASES);
            assert_eq!(r.filter.len(), r.phases * r.taps);
        }
        // The common rates keep exact phases (11,025 -> 8,000 has 320).
        assert_eq!(Resampler::new(11_025, 8000).phases, 320);
        // An awkward ratio with nearest phases still resamples cleanly.
        let input = sine(1000.0, 44_101, 0.5, 10000.0);
        let out = resample(&input, 44_101, 8000);
        assert_eq!(out.len(), 4000);
        let f = crossing_frequency(&out[200..3800], 8000);
        assert!((f - 1000.0).abs() < 5.0, "{f}");
        let a = goertzel_amplitude(&out[200..3800], 8000, 1000.0);
        assert!((a - 10000.0).abs() < 300.0, "amplitude {a}");
        // A large ratio with capped taps too.
        let input = sine(1000.0, 384_000, 0.25, 10000.0);
        let out = resample(&input, 384_000, 8000);
        assert_eq!(out.len(), 2000);
        let a = goertzel_amplitude(&out[200..1800], 8000, 1000.0);
        assert!((a - 10000.0).abs() < 300.0, "amplitude {a}");
    }
}
