//! Every panic is recorded, except the ones evcontract catches itself.
//!
//! Under libFuzzer the hook installed before ours aborts the process (so
//! libFuzzer records the crash and its input); in the plain replay it is the
//! default hook, and [`assert_none`] turns a recorded panic into a failure,
//! including a panic on another thread (a gateway task, the thread that
//! runs typify) that would otherwise be swallowed.

use std::path::PathBuf;
use std::sync::{Mutex, Once, OnceLock, PoisonError};

static PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());
static INIT: Once = Once::new();

/// Installs the recording hook, once; call it at the start of every target.
pub fn init() {
    INIT.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let thread = std::thread::current();
            let record = format!(
                "panic on thread `{}`: {info}\n{}",
                thread.name().unwrap_or("unnamed"),
                std::backtrace::Backtrace::force_capture()
            );
            PANICS
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(record);
            previous(info);
        }));
        // On top of it: stay quiet, and record nothing, for the typify
        // panics evcontract turns into diagnostics.
        evcontract::install_panic_filter();
    });
}

/// The panics recorded since the last call.
pub fn take() -> Vec<String> {
    std::mem::take(&mut *PANICS.lock().unwrap_or_else(PoisonError::into_inner))
}

/// Fails if a panic was recorded since the last call.
pub fn assert_none(what: &str) {
    let panics = take();
    assert!(
        panics.is_empty(),
        "{what}: {} panic(s) escaped:\n{}",
        panics.len(),
        panics.join("\n")
    );
}

/// Writes `data` to the file named by `EVCONTRACT_FUZZ_LAST_INPUT`, when set,
/// before a target runs it: the input of a crash libFuzzer cannot record
/// (a stack overflow kills the process before its handler runs).
pub fn remember(data: &[u8]) {
    static PATH: OnceLock<Option<PathBuf>> = OnceLock::new();
    if let Some(path) =
        PATH.get_or_init(|| std::env::var_os("EVCONTRACT_FUZZ_LAST_INPUT").map(PathBuf::from))
    {
        let _ = std::fs::write(path, data);
    }
}
