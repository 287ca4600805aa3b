//! Arbitrary bytes as an uploaded recording: parsing never panics; a WAV that parses has a
//! length consistent with its samples; cutting it anywhere and joining it with itself give WAVs
//! that parse again, with the expected lengths and the same format.
#![no_main]

use libfuzzer_sys::fuzz_target;
use parley_store::mailstore::wav_duration_ms;
use parley_store::wav::{Pcm, join, slice_from};

fuzz_target!(|data: &[u8]| {
    let Some(pcm) = Pcm::parse(data) else {
        assert!(wav_duration_ms(data).is_none());
        return;
    };
    let ms = pcm.duration_ms();
    assert_eq!(wav_duration_ms(data), Some(ms));
    // Cut at a point taken from the input itself (and past the end).
    let at = data.len() as u32 % (ms.saturating_add(2000)).max(1);
    let cut = slice_from(data, at).expect("a parsed WAV can be cut");
    let cut_pcm = Pcm::parse(&cut).expect("a cut WAV parses");
    assert!(cut_pcm.same_format(&pcm));
    assert!(cut_pcm.data.len() <= pcm.data.len());
    assert_eq!(cut_pcm.data, pcm.samples_after(at));
    let joined = join(data, &cut).expect("same format joins");
    let joined_pcm = Pcm::parse(&joined).expect("a joined WAV parses");
    assert_eq!(joined_pcm.data.len(), pcm.data.len() + cut_pcm.data.len());
});
