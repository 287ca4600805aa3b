//! Just enough of WAV for voicemail, on hostile bytes: the length of a PCM recording (every
//! deposit is checked with it), cutting one (skip ahead in a message, keys 7 and 9) and joining
//! two (a comment before a forwarded message). Bounds-checked; anything unexpected is `None`.
//! Fuzzed: `store/fuzz` (`wav`).

/// A parsed PCM WAV: its `fmt ` chunk body and its samples.
#[derive(Debug, Clone, Copy)]
pub struct Pcm<'a> {
    fmt: &'a [u8],
    pub data: &'a [u8],
    byte_rate: u32,
    block_align: u16,
}

impl<'a> Pcm<'a> {
    /// The PCM of `wav` (the RIFF/WAVE layout, an `fmt ` before the `data`).
    pub fn parse(wav: &'a [u8]) -> Option<Self> {
        if wav.get(..4)? != b"RIFF" || wav.get(8..12)? != b"WAVE" {
            return None;
        }
        let mut pos = 12usize;
        let mut fmt = None;
        while pos.checked_add(8)? <= wav.len() {
            let id = wav.get(pos..pos + 4)?;
            let len = u32::from_le_bytes(wav.get(pos + 4..pos + 8)?.try_into().ok()?) as usize;
            let body = pos + 8;
            if id == b"fmt " {
                fmt = Some(wav.get(body..body.checked_add(len)?)?);
            } else if id == b"data" {
                let fmt: &[u8] = fmt?;
                let byte_rate = u32::from_le_bytes(fmt.get(8..12)?.try_into().ok()?);
                let block_align = u16::from_le_bytes(fmt.get(12..14)?.try_into().ok()?);
                if byte_rate == 0 || block_align == 0 {
                    return None;
                }
                let end = body.checked_add(len)?.min(wav.len());
                let data = wav.get(body..end)?;
                return Some(Pcm {
                    fmt,
                    data,
                    byte_rate,
                    block_align,
                });
            }
            pos = body.checked_add(len)?.checked_add(len % 2)?;
        }
        None
    }

    /// Length in milliseconds.
    pub fn duration_ms(&self) -> u32 {
        u32::try_from(self.data.len() as u64 * 1000 / u64::from(self.byte_rate)).unwrap_or(u32::MAX)
    }

    /// The samples from `ms` on (empty past the end), whole frames only.
    pub fn samples_after(&self, ms: u32) -> &'a [u8] {
        let align = usize::from(self.block_align);
        let at = (u64::from(ms) * u64::from(self.byte_rate) / 1000) as usize;
        let at = (at - at % align).min(self.data.len());
        &self.data[at..]
    }

    /// Whether `other` has the same sample format (so the two can be joined).
    pub fn same_format(&self, other: &Pcm<'_>) -> bool {
        self.fmt == other.fmt
    }

    /// A WAV of this format holding `data`.
    pub fn with_data(&self, data: &[&[u8]]) -> Vec<u8> {
        let len: usize = data.iter().map(|d| d.len()).sum();
        let mut out = Vec::with_capacity(28 + self.fmt.len() + len);
        out.extend_from_slice(b"RIFF");
        out.extend_from_slice(&((20 + self.fmt.len() + len) as u32).to_le_bytes());
        out.extend_from_slice(b"WAVEfmt ");
        out.extend_from_slice(&(self.fmt.len() as u32).to_le_bytes());
        out.extend_from_slice(self.fmt);
        if self.fmt.len() % 2 == 1 {
            out.push(0);
        }
        out.extend_from_slice(b"data");
        out.extend_from_slice(&(len as u32).to_le_bytes());
        for d in data {
            out.extend_from_slice(d);
        }
        out
    }
}

/// `wav` from `ms` on, as a WAV; `None` if it is not PCM WAV.
pub fn slice_from(wav: &[u8], ms: u32) -> Option<Vec<u8>> {
    let p = Pcm::parse(wav)?;
    Some(p.with_data(&[p.samples_after(ms)]))
}

/// `first` then `second` in one WAV when both have one format; else `None`.
pub fn join(first: &[u8], second: &[u8]) -> Option<Vec<u8>> {
    let a = Pcm::parse(first)?;
    let b = Pcm::parse(second)?;
    a.same_format(&b).then(|| a.with_data(&[a.data, b.data]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ms` of 8 kHz 16-bit mono PCM, sample i = i (mod 2^15).
    fn wav(ms: u32) -> Vec<u8> {
        let samples: Vec<u8> = (0..ms as usize * 8)
            .flat_map(|i| ((i % 32768) as i16).to_le_bytes())
            .collect();
        let mut fmt = Vec::new();
        fmt.extend_from_slice(&1u16.to_le_bytes());
        fmt.extend_from_slice(&1u16.to_le_bytes());
        fmt.extend_from_slice(&8000u32.to_le_bytes());
        fmt.extend_from_slice(&16000u32.to_le_bytes());
        fmt.extend_from_slice(&2u16.to_le_bytes());
        fmt.extend_from_slice(&16u16.to_le_bytes());
        Pcm {
            fmt: &fmt,
            data: &[],
            byte_rate: 16000,
            block_align: 2,
        }
        .with_data(&[&samples])
    }

    #[test]
    fn slices_and_joins_keep_whole_frames() {
        let w = wav(3000);
        assert_eq!(Pcm::parse(&w).unwrap().duration_ms(), 3000);
        let s = slice_from(&w, 1000).unwrap();
        let p = Pcm::parse(&s).unwrap();
        assert_eq!(p.duration_ms(), 2000);
        assert_eq!(&p.data[..2], &8000i16.to_le_bytes());
        assert_eq!(
            Pcm::parse(&slice_from(&w, 9000).unwrap())
                .unwrap()
                .duration_ms(),
            0
        );
        let j = join(&wav(500), &w).unwrap();
        assert_eq!(Pcm::parse(&j).unwrap().duration_ms(), 3500);
        assert_eq!(crate::mailstore::wav_duration_ms(&j), Some(3500));
    }

    #[test]
    fn hostile_headers_are_refused_not_trusted() {
        assert!(Pcm::parse(b"RIFF\0\0\0\0WAVE").is_none());
        let mut w = wav(100);
        // A data length far past the end is clamped to what is there.
        let at = w.len() - 1600 - 4;
        w[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(Pcm::parse(&w).unwrap().duration_ms(), 100);
        // A zero byte rate would divide by zero.
        let mut z = wav(100);
        z[28..32].copy_from_slice(&0u32.to_le_bytes());
        assert!(Pcm::parse(&z).is_none());
        for n in 0..w.len() {
            let _ = Pcm::parse(&w[..n]).map(|p| p.samples_after(50).len());
        }
    }
}
