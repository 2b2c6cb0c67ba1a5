//! Generation options: how the generated crates reach the runtime.

/// How the generated crates depend on `evcontract-runtime`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimeDep {
    /// A crates.io version requirement (the default, `0.1`). Inside this
    /// repository the workspace's `[patch.crates-io]` points it at `runtime/`.
    Version(String),
    /// A path, relative to the generated crate's folder.
    Path(String),
}

impl Default for RuntimeDep {
    fn default() -> Self {
        Self::Version(
            env!("CARGO_PKG_VERSION")
                .rsplit_once('.')
                .map_or("0.1", |(v, _)| v)
                .to_owned(),
        )
    }
}

impl RuntimeDep {
    /// The TOML inline table for the dependency.
    pub(crate) fn toml(&self) -> String {
        let quote = |s: &str| serde_json::to_string(s).unwrap_or_default();
        match self {
            Self::Version(v) => format!("{{ version = {} }}", quote(v)),
            Self::Path(p) => format!("{{ path = {} }}", quote(p)),
        }
    }
}

/// Generation options.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// How generated crates depend on the runtime.
    pub runtime: RuntimeDep,
}
