//! Hostile and careless inputs: zip bombs, an output that is the input.

use std::fs;
use std::io::Write;

use crate::bin;

fn zip_with(dir: &std::path::Path, name: &str, body: &[u8]) -> std::path::PathBuf {
    let zpath = dir.join(name);
    let mut z = zip::ZipWriter::new(fs::File::create(&zpath).unwrap());
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    z.start_file("_chat.txt", opts).unwrap();
    z.write_all(body).unwrap();
    z.finish().unwrap();
    zpath
}

#[test]
fn a_zip_bomb_is_refused_before_it_is_inflated() {
    let dir = tempfile::tempdir().unwrap();
    // 64 MiB of one repeated line packs to well under 1 MiB: over the 200× ratio.
    let line = b"[15/01/2023, 21:08:00] Ann: hi\n";
    let body: Vec<u8> = line.iter().copied().cycle().take(64 << 20).collect();
    let bomb = zip_with(dir.path(), "bomb.zip", &body);
    assert!(fs::metadata(&bomb).unwrap().len() < 1 << 20);
    let out = bin().arg("parse").arg(&bomb).arg("-q").output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("zip bomb") && err.contains("bomb.zip"), "{err}");
    // The size cap holds on its own too.
    let small = zip_with(dir.path(), "small.zip", &line.repeat(100));
    let out = bin().arg("parse").arg(&small).args(["--max-inflated", "1K", "-q"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--max-inflated"));
    bin().arg("parse").arg(&small).arg("-q").assert().success();
}

/// Rewrites the compressed size in every local and central header of a one-entry zip.
fn lie_about_compressed_size(zpath: &std::path::Path, claimed: u32) {
    let mut b = fs::read(zpath).unwrap();
    let at = |b: &[u8], sig: &[u8]| b.windows(4).position(|w| w == sig).unwrap();
    let local = at(&b, b"PK\x03\x04");
    b[local + 18..local + 22].copy_from_slice(&claimed.to_le_bytes());
    let central = at(&b, b"PK\x01\x02");
    b[central + 20..central + 24].copy_from_slice(&claimed.to_le_bytes());
    fs::write(zpath, b).unwrap();
}

#[test]
fn a_zip_bomb_whose_headers_claim_a_huge_compressed_size_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let line = b"[15/01/2023, 21:08:00] Ann: hi\n";
    let body: Vec<u8> = line.iter().copied().cycle().take(64 << 20).collect();
    let bomb = zip_with(dir.path(), "liar.zip", &body);
    // Both headers claim ~4 GB of compressed data, so the declared ratio looks harmless.
    lie_about_compressed_size(&bomb, 0xF000_0000);
    let out = bin().arg("parse").arg(&bomb).arg("-q").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("zip bomb") && err.contains("liar.zip") && err.lines().count() == 1, "{err}");
    // An honest export whose headers overstate the compressed size still reads.
    let honest = zip_with(dir.path(), "honest.zip", &line.repeat(100));
    lie_about_compressed_size(&honest, 0xF000_0000);
    bin().arg("parse").arg(&honest).arg("-q").assert().success();
}

#[test]
fn an_output_that_is_the_input_is_refused_and_the_input_kept() {
    let dir = tempfile::tempdir().unwrap();
    let chat = dir.path().join("chat.txt");
    let text = "[15/01/2023, 21:08:00] Ann: hi\n[15/01/2023, 21:09:00] Bob: hello\n";
    fs::write(&chat, text).unwrap();
    let out = bin().arg("parse").arg(&chat).arg("-o").arg(&chat).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("also an input"));
    assert_eq!(fs::read_to_string(&chat).unwrap(), text);
    // Through a symlink too.
    #[cfg(unix)]
    {
        let link = dir.path().join("link.jsonl");
        std::os::unix::fs::symlink(&chat, &link).unwrap();
        bin().arg("parse").arg(&chat).arg("-o").arg(&link).assert().code(2);
        assert_eq!(fs::read_to_string(&chat).unwrap(), text);
    }
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), if cfg!(unix) { 2 } else { 1 }, "temp files left");
}

#[test]
fn a_header_with_an_impossible_time_is_reported_not_swallowed() {
    let dir = tempfile::tempdir().unwrap();
    let chat = dir.path().join("chat.txt");
    fs::write(&chat, "15/01/2023, 21:08 - Ann: hi\n15/01/2023, 25:61 - Bob: when?\n15/01/2023, 21:09 - Bob: hello\n")
        .unwrap();
    let out = bin().arg("parse").arg(&chat).output().unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("1 header(s) with an impossible date or time") && err.contains("chat.txt:2"), "{err}");
    let json = bin().arg("parse").arg(&chat).args(["--json", "-o", "/dev/null"]).output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["parse"]["invalid_headers"], serde_json::json!([2]), "{report}");
}
