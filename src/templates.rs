//! Handlebars templates (from `templates/`, compiled into the binary).
//!
//! Strict mode, so a template that reads a field the view does not have fails
//! instead of printing nothing; no HTML escaping, since the output is code.

use handlebars::{Context, Handlebars};
use serde::Serialize;

/// Every template, by name. `rust/doc`, `ts/error_code` and `ts/header`
/// are partials (`{{> rust/doc}}`), shared by other templates.
const TEMPLATES: [(&str, &str); 28] = [
    ("rust/doc", include_str!("../templates/rust/doc.rs.hbs")),
    (
        "ts/error_code",
        include_str!("../templates/ts/error_code.ts.hbs"),
    ),
    (
        "rust/Cargo.toml",
        include_str!("../templates/rust/Cargo.toml.hbs"),
    ),
    ("rust/lib.rs", include_str!("../templates/rust/lib.rs.hbs")),
    (
        "rust/errors.rs",
        include_str!("../templates/rust/errors.rs.hbs"),
    ),
    (
        "rust/namespace.rs",
        include_str!("../templates/rust/namespace.rs.hbs"),
    ),
    (
        "ts/namespace.ts",
        include_str!("../templates/ts/namespace.ts.hbs"),
    ),
    ("ts/index.ts", include_str!("../templates/ts/index.ts.hbs")),
    (
        "ts/client.ts",
        include_str!("../templates/ts/client.ts.hbs"),
    ),
    ("ts/header", include_str!("../templates/ts/header.hbs")),
    (
        "ts/namespace.js",
        include_str!("../templates/ts/namespace.js.hbs"),
    ),
    (
        "ts/client.d.ts",
        include_str!("../templates/ts/client.d.ts.hbs"),
    ),
    (
        "ts/client.js",
        include_str!("../templates/ts/client.js.hbs"),
    ),
    (
        "ts/contract.ts",
        include_str!("../templates/ts/contract.ts.hbs"),
    ),
    (
        "ts/contract.d.ts",
        include_str!("../templates/ts/contract.d.ts.hbs"),
    ),
    (
        "ts/contract.js",
        include_str!("../templates/ts/contract.js.hbs"),
    ),
    ("ts/react.ts", include_str!("../templates/ts/react.ts.hbs")),
    (
        "ts/react.d.ts",
        include_str!("../templates/ts/react.d.ts.hbs"),
    ),
    ("ts/react.js", include_str!("../templates/ts/react.js.hbs")),
    (
        "ts/package.json",
        include_str!("../templates/ts/package.json.hbs"),
    ),
    // `evcontract init`.
    (
        "init/contract.json",
        include_str!("../templates/init/contract.json.hbs"),
    ),
    (
        "init/evcontract.toml",
        include_str!("../templates/init/evcontract.toml.hbs"),
    ),
    (
        "init/Cargo.toml",
        include_str!("../templates/init/Cargo.toml.hbs"),
    ),
    (
        "init/server.Cargo.toml",
        include_str!("../templates/init/server.Cargo.toml.hbs"),
    ),
    (
        "init/main.rs",
        include_str!("../templates/init/main.rs.hbs"),
    ),
    ("init/ci.yml", include_str!("../templates/init/ci.yml.hbs")),
    (
        "init/README.md",
        include_str!("../templates/init/README.md.hbs"),
    ),
    (
        "init/gitignore",
        include_str!("../templates/init/gitignore.hbs"),
    ),
];

/// The template registry.
pub struct Templates {
    registry: Handlebars<'static>,
}

impl Templates {
    /// Compiles every template.
    pub fn new() -> Result<Self, String> {
        let mut registry = Handlebars::new();
        registry.set_strict_mode(true);
        registry.register_escape_fn(handlebars::no_escape);
        for (name, text) in TEMPLATES {
            registry
                .register_template_string(name, text)
                .map_err(|e| format!("template `{name}` does not compile: {e}"))?;
        }
        Ok(Self { registry })
    }

    /// Renders `name` with `view`.
    pub fn render(&self, name: &str, view: &impl Serialize) -> Result<String, String> {
        self.registry
            .render(name, view)
            .map_err(|e| format!("template `{name}` failed: {e}"))
    }

    /// Renders `name` with a view already turned into a handlebars context:
    /// for views rendered by several templates, or built as a JSON value
    /// (`render` would convert the view to JSON again on every call).
    pub fn render_context(&self, name: &str, view: &Context) -> Result<String, String> {
        self.registry
            .render_with_context(name, view)
            .map_err(|e| format!("template `{name}` failed: {e}"))
    }
}
