//! `evcontract init`: a new project that builds and runs as written (a
//! starter contract, a server crate implementing its generated trait, the
//! project file and a CI job), from the templates in `templates/init/`.
//! Generation itself is the CLI's `generate`, run afterwards.

use std::path::{Path, PathBuf};

use heck::{ToKebabCase, ToSnakeCase};
use serde_json::json;

use crate::templates::Templates;

/// What `init` writes, relative to the new project's folder: (template,
/// file).
const FILES: [(&str, &str); 8] = [
    ("init/contract.json", "schemas/{name}.contract.json"),
    ("init/evcontract.toml", "evcontract.toml"),
    ("init/Cargo.toml", "Cargo.toml"),
    ("init/server.Cargo.toml", "server/Cargo.toml"),
    ("init/main.rs", "server/src/main.rs"),
    ("init/ci.yml", ".github/workflows/contract.yml"),
    ("init/README.md", "README.md"),
    ("init/gitignore", ".gitignore"),
];

/// The contract name for a project folder: its name in snake_case, when
/// that is an identifier starting with a letter.
pub fn name_for(dir: &Path) -> Result<String, String> {
    let folder = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = folder.to_snake_case();
    valid_name(&name).then_some(name).ok_or_else(|| {
        format!("no contract name can be made of the folder name `{folder}`: give one with --name")
    })
}

fn valid_name(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The runtime of the checkout this CLI was built from, when it is still
/// there (a CLI installed with `cargo install --path` from a checkout, or
/// run with `cargo run`); `None` for a CLI built from a published package,
/// which has no runtime folder beside it.
pub fn checkout_runtime() -> Option<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("runtime");
    path.join("Cargo.toml")
        .is_file()
        .then(|| path.display().to_string())
}

/// Writes a new project into `dir`, which must not exist or be empty.
/// `runtime_path` goes into the project file (relative to the generated
/// crate, as `--runtime-path`); without it, generated crates depend on
/// `evcontract-runtime` from crates.io. Returns the files written.
pub fn scaffold(
    dir: &Path,
    name: &str,
    runtime_path: Option<&str>,
) -> Result<Vec<PathBuf>, String> {
    if !valid_name(name) {
        return Err(format!(
            "contract name `{name}` must be snake_case: lowercase letters, digits and `_`, starting with a letter"
        ));
    }
    if let Ok(mut entries) = std::fs::read_dir(dir)
        && entries.next().is_some()
    {
        return Err(format!(
            "{} is not empty; init writes a new project into an empty or new folder",
            dir.display()
        ));
    }
    let templates = Templates::new()?;
    let view = json!({
        "name": name,
        "name_kebab": name.to_kebab_case(),
        "crate_name": crate::ir::crate_name(name),
        "crate_ident": format!("{name}_contract"),
        "runtime_path": runtime_path.map(|p| serde_json::Value::String(p.to_owned()).to_string()),
    });
    // Everything is rendered before anything is written.
    let mut files = Vec::with_capacity(FILES.len());
    for (template, file) in FILES {
        let path = dir.join(file.replace("{name}", name));
        files.push((path, templates.render(template, &view)?));
    }
    let mut written = Vec::with_capacity(files.len());
    for (path, text) in files {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{name_for, scaffold};

    #[test]
    fn the_name_comes_from_the_folder() {
        assert_eq!(name_for(Path::new("/x/My Chat")).unwrap(), "my_chat");
        assert_eq!(name_for(Path::new("shop-api")).unwrap(), "shop_api");
        assert!(name_for(Path::new("/x/2fast")).is_err());
    }

    #[test]
    fn a_folder_with_files_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("keep.txt"), "mine").unwrap();
        let err = scaffold(dir.path(), "app", None).unwrap_err();
        assert!(err.contains("is not empty"), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
