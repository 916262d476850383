//! Builds the console's assets into the function: each file of `console/` as it is and
//! gzip-compressed (level 9), with an ETag from its bytes. Nothing is fetched; no bundler.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::Path;

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("console");
    println!("cargo:rerun-if-changed={}", dir.display());
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .expect("functions/alb/console")
        .map(|e| {
            e.expect("a console file")
                .file_name()
                .into_string()
                .expect("a UTF-8 file name")
        })
        .collect();
    names.sort();
    let mut table = String::from("pub static ASSETS: &[Asset] = &[\n");
    for name in names {
        let content_type = match name.rsplit('.').next() {
            Some("html") => "text/html; charset=utf-8",
            Some("js") => "text/javascript; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            Some("svg") => "image/svg+xml",
            _ => continue,
        };
        let raw = std::fs::read(dir.join(&name)).expect("a console file");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&raw).expect("gzip");
        let gzipped = gz.finish().expect("gzip");
        let gz_path = out.join(format!("{name}.gz"));
        std::fs::write(&gz_path, &gzipped).expect("write the gzip file");
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        raw.hash(&mut hasher);
        table.push_str(&format!(
            "    Asset {{ name: {name:?}, content_type: {content_type:?}, raw: include_bytes!({raw:?}), gzip: include_bytes!({gz:?}), etag: \"\\\"{etag:016x}\\\"\", etag_gzip: \"\\\"{etag:016x}-gz\\\"\" }},\n",
            raw = dir.join(&name).display().to_string(),
            gz = gz_path.display().to_string(),
            etag = hasher.finish(),
        ));
    }
    table.push_str("];\n");
    std::fs::write(out.join("console_assets.rs"), table).expect("write the asset table");
}
