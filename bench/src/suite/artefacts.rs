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
    console_rows(ctx, r);
    Ok(())
}

/// The web console: what a browser downloads to open it, as the alb function serves it (each
/// file gzip-compressed at level 9 by `functions/alb/build.rs`), against its 250 KiB budget.
fn console_rows(ctx: &Ctx, r: &mut Report) {
    const BUDGET: u64 = 250 * 1024;
    let dir = ctx.repo.join("functions/alb/console");
    let Ok(out) = std::process::Command::new(&ctx.python)
        .args([
            "-c",
            "import gzip,os,sys\nfor n in sorted(os.listdir(sys.argv[1])):\n  b=open(os.path.join(sys.argv[1],n),'rb').read()\n  print(n,len(b),len(gzip.compress(b,9)))",
        ])
        .arg(&dir)
        .output()
    else {
        return;
    };
    let mut rows = Vec::new();
    let (mut raw_total, mut gz_total) = (0u64, 0u64);
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let (Some(name), Some(raw), Some(gz)) = (
            f.first(),
            f.get(1).and_then(|v| v.parse::<u64>().ok()),
            f.get(2).and_then(|v| v.parse::<u64>().ok()),
        ) else {
            continue;
        };
        raw_total += raw;
        gz_total += gz;
        rows.push(vec![
            format!("`{name}`"),
            format!("{:.1} KiB", raw as f64 / 1024.0),
            format!("{:.1} KiB", gz as f64 / 1024.0),
        ]);
    }
    rows.push(vec![
        "**the console, in all**".into(),
        format!("{:.1} KiB", raw_total as f64 / 1024.0),
        format!(
            "{:.1} KiB ({} the 250 KiB budget)",
            gz_total as f64 / 1024.0,
            if gz_total <= BUDGET { "within" } else { "OVER" }
        ),
    ]);
    r.heading(3, "The web console: what a browser downloads");
    r.table(
        &["file (`functions/alb/console/`)", "as written", "as served (gzip -9)"],
        &rows,
    );
    r.para(
        "Served by the alb function from its own binary (no framework, no build step); a reload \
         revalidates each file with its ETag (304, no body).",
    );
}
