//! Artefacts: binary and package sizes.

use std::path::Path;

use super::common::{Ctx, template_functions};
use crate::report::{Report, mib};

/// Deflate-compressed size of a file in a zip, as `sam build`/`sam deploy` packages a function.
fn zipped_size(python: &Path, file: &Path) -> Option<u64> {
    let out = std::process::Command::new(python)
        .args([
            "-c",
            "import io,sys,zipfile\nb=io.BytesIO()\nz=zipfile.ZipFile(b,'w',zipfile.ZIP_DEFLATED,compresslevel=9)\nz.write(sys.argv[1],'bootstrap')\nz.close()\nprint(len(b.getvalue()))",
        ])
        .arg(file)
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

pub(super) fn artefacts_section(ctx: &Ctx, r: &mut Report) -> Result<(), String> {
    r.heading(2, "Artefacts: binary and package sizes");
    let mut rows = Vec::new();
    let mut add = |label: String, path: &Path, note: &str| {
        if let Ok(meta) = path.metadata() {
            rows.push(vec![
                label,
                mib(meta.len() as f64),
                zipped_size(&ctx.python, path).map_or("–".into(), |z| mib(z as f64)),
                note.to_owned(),
            ]);
        }
    };
    for (id, binary, ..) in template_functions() {
        add(
            format!("`{id}` (`{binary}`)"),
            &ctx.functions.join(binary),
            "x86_64, release profile, stripped",
        );
    }
    for (id, ..) in template_functions() {
        let bootstrap = ctx.repo.join(".aws-sam/build").join(id).join("bootstrap");
        // When it was built, so that a stale build shows as one.
        let built = bootstrap
            .metadata()
            .and_then(|m| m.modified())
            .map(|t| {
                let t = time::OffsetDateTime::from(t);
                format!("{} {:02}:{:02} UTC", t.date(), t.hour(), t.minute())
            })
            .unwrap_or_default();
        add(
            format!("`{id}` (arm64 `bootstrap`)"),
            &bootstrap,
            &format!("as deployed: `sam build` (cargo-lambda, aarch64) at {built}"),
        );
    }
    add(
        "`floor-echo`".into(),
        &ctx.functions.join("floor-echo"),
        "x86_64, release profile",
    );
    add(
        "`floor-std`".into(),
        &ctx.functions.join("floor-std"),
        "x86_64, release profile",
    );
    if let Some(go) = &ctx.go_peer {
        add(
            "`go-peer` (alb and stream)".into(),
            go,
            "x86_64, `go build -trimpath -ldflags='-s -w'`",
        );
    }
    r.table(&["artefact", "binary", "zipped (deflate -9)", "built as"], &rows);
    r.para(
        "The arm64 rows appear when `.aws-sam/build` holds a `sam build` (`bench/run --arm64` runs \
         `scripts/build-check` first; by default the suite does not cross-compile, to stay within its \
         time). Python peers ship as source; their \
         runtime (CPython, boto3, awslambdaric) is part of the Lambda image.",
    );
    Ok(())
}
