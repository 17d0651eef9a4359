//! Replays the committed fuzz corpus under plain `cargo test`, so CI exercises every input
//! without a fuzzer. The target bodies are the fuzz crate's own, included from its source.

#[path = "../fuzz/src/lib.rs"]
mod targets;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

#[test]
fn every_corpus_input_passes_its_target() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let mut failures = Vec::new();
    for (target, run) in targets::TARGETS {
        let dir = corpus.join(target);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.expect("directory entry").path())
            .filter(|path| path.is_file())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{}: no seed inputs", dir.display());
        for file in files {
            let data = std::fs::read(&file).expect("corpus file");
            if catch_unwind(AssertUnwindSafe(|| run(&data))).is_err() {
                failures.push(file.display().to_string());
            }
        }
    }
    assert!(failures.is_empty(), "inputs that fail their target (panics above):\n{}", failures.join("\n"));
}

#[test]
fn the_verify_format_reads_a_request() {
    let request = targets::Request::decode(
        b"GET https://h.example/x?a=1 1700000000\n:secret: s1\n:secret: s2\nX-A: one\nX-A: two\nbad line\n\nbody\n\nmore",
    );
    assert_eq!(request.method, http::Method::GET);
    assert_eq!(request.url.as_deref(), Some("https://h.example/x?a=1"));
    assert_eq!(request.now.as_secs(), 1_700_000_000);
    assert_eq!(request.secrets, ["s1", "s2"]);
    assert_eq!(request.headers.get_all("x-a").iter().collect::<Vec<_>>(), ["one", "two"]);
    assert_eq!(&request.body.contiguous()[..], b"body\n\nmore");
}
