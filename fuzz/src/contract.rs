//! `contract_text`: bytes as a contract file's text, through load and
//! generation.

use std::path::Path;
use std::sync::OnceLock;

use evcontract::Options;
use evcontract::templates::Templates;

use crate::panics;

/// What one contract text came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Refused by `load`, with at least one diagnostic.
    Refused,
    /// Loaded, then refused by generation with an error.
    NotGenerated,
    /// Loaded and generated; the number of files.
    Generated(usize),
}

/// The compiled templates, once per process.
pub fn templates() -> &'static Templates {
    static TEMPLATES: OnceLock<Templates> = OnceLock::new();
    TEMPLATES.get_or_init(|| Templates::new().expect("the templates compile"))
}

/// The fuzz target: `data` (lossily UTF-8) as a `.json` and as a `.yaml`
/// contract.
pub fn contract_text(data: &[u8]) {
    panics::init();
    panics::remember(data);
    let text = String::from_utf8_lossy(data);
    for file in ["fuzz.contract.json", "fuzz.contract.yaml"] {
        load_and_generate(Path::new(file), &text);
    }
}

/// Loads `text` as `file` and, when it loads, generates every file for it.
/// Panics if anything panicked outside evcontract's own guard, or if a
/// refusal comes without a diagnostic.
pub fn load_and_generate(file: &Path, text: &str) -> Outcome {
    let outcome = match evcontract::load(file, text) {
        Ok(ir) => match evcontract::emit(&ir, &Options::default(), templates()) {
            Ok(files) => {
                assert!(!files.is_empty(), "a loaded contract generated no file");
                Outcome::Generated(files.len())
            }
            Err(e) => {
                assert!(!e.to_string().is_empty(), "an empty emit error");
                Outcome::NotGenerated
            }
        },
        Err(diagnostics) => {
            assert!(!diagnostics.is_empty(), "refused without a diagnostic");
            for d in &diagnostics {
                // Display computes nothing new, but must not panic either.
                let _ = d.to_string();
            }
            Outcome::Refused
        }
    };
    panics::assert_none(&format!("{}", file.display()));
    outcome
}
