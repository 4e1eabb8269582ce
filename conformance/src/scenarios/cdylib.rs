//! Building the suite's shared objects (cdylib crates of this workspace:
//! the test module, the minimal plugin, the README's plugin, the engine
//! copies) with a nested cargo, once per process for each package, profile
//! and feature.

/// Builds the test shared object with a nested cargo into
/// `target/modules`, and returns its path.
pub fn build_shared_object() -> Result<std::path::PathBuf, String> {
    build_cdylib(
        "static-call-test-module",
        "libstatic_call_test_module.so",
        false,
    )
}

/// Builds a cdylib of this workspace with a nested cargo into
/// `target/modules` (debug or release) and returns the object's path;
/// once per process for each (package, profile).
pub(crate) fn build_cdylib(
    package: &str,
    file: &str,
    release: bool,
) -> Result<std::path::PathBuf, String> {
    build_cdylib_with(package, file, release, "")
}

/// [`build_cdylib`] with a cargo feature of the package (`""`: none),
/// built in a target directory of its own so that it never replaces the
/// plain build.
pub(crate) fn build_cdylib_with(
    package: &str,
    file: &str,
    release: bool,
    feature: &str,
) -> Result<std::path::PathBuf, String> {
    let extra = if feature.is_empty() {
        Extra::None
    } else {
        Extra::Feature(feature)
    };
    build_cached(package, file, release, extra)
}

/// [`build_cdylib`] with an environment variable its build script reads
/// (`var=value`), built in a target directory of its own per value.
pub(crate) fn build_cdylib_env(
    package: &str,
    file: &str,
    release: bool,
    var: &str,
    value: &str,
) -> Result<std::path::PathBuf, String> {
    build_cached(package, file, release, Extra::Env(var, value))
}

/// What a build adds to the plain one.
#[derive(Clone, Copy)]
enum Extra<'a> {
    None,
    /// `--features <f>`, into `target/modules-<f>`.
    Feature(&'a str),
    /// `var=value` in the build's environment, into
    /// `target/modules-<package>-<value>`.
    Env(&'a str, &'a str),
}

impl Extra<'_> {
    /// The target directory's name below `target/`.
    fn dir(self, package: &str) -> String {
        match self {
            Extra::None => "modules".into(),
            Extra::Feature(f) => format!("modules-{f}"),
            Extra::Env(_, v) => format!("modules-{package}-{v}"),
        }
    }
}

fn build_cached(
    package: &str,
    file: &str,
    release: bool,
    extra: Extra<'_>,
) -> Result<std::path::PathBuf, String> {
    type Built = Vec<((String, bool, String), std::path::PathBuf)>;
    static BUILT: std::sync::Mutex<Built> = std::sync::Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let id = (package.to_string(), release, extra.dir(package));
    if let Some((_, p)) = built.iter().find(|(k, _)| *k == id) {
        return Ok(p.clone());
    }
    let path = build_cdylib_now(package, file, release, extra)?;
    built.push((id, path.clone()));
    Ok(path)
}

fn build_cdylib_now(
    package: &str,
    file: &str,
    release: bool,
    extra: Extra<'_>,
) -> Result<std::path::PathBuf, String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = crate::runner::target_dir().join(extra.dir(package));
    let cargo = option_env!("CARGO").unwrap_or("cargo");
    let mut cmd = std::process::Command::new(cargo);
    cmd.current_dir(&root)
        .args(["build", "--quiet", "-p", package, "--target-dir"])
        .arg(&target)
        .env_remove("CARGO_TARGET_DIR");
    match extra {
        Extra::None => {}
        Extra::Feature(f) => {
            cmd.args(["--features", f]);
        }
        Extra::Env(var, value) => {
            cmd.env(var, value);
        }
    }
    if release {
        cmd.arg("--release");
    }
    let so = target
        .join(if release { "release" } else { "debug" })
        .join(file);
    let out = match cmd.output() {
        Ok(out) => out,
        // No cargo (a machine that runs prebuilt binaries): use the object
        // built before, if it is there.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && so.exists() => {
            return std::fs::canonicalize(&so).map_err(|e| format!("{}: {e}", so.display()));
        }
        Err(e) => return Err(format!("running cargo: {e}")),
    };
    if !out.status.success() {
        return Err(format!(
            "cargo build of {package} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    std::fs::canonicalize(&so).map_err(|e| format!("{}: {e}", so.display()))
}
