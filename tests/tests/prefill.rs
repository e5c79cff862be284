//! The server's plan of prompt starts evaluated ahead of the cursor (issue 12, lever 2), over
//! stdio with the fake backend (no model): after an answer the plan names the anchor lines of
//! the cursor's band and its neighbours, and the settings turn it off. What the engine does
//! with a plan is tested against the real model in `inference/tests/prefill.rs`.

use std::time::Duration;

use ghostline_tests::{editor_capabilities, file_uri, Server, Spawn};
use serde_json::{json, Value};

fn started(options: Value) -> Server {
    let mut s = Server::spawn(Spawn::default().settings(json!({})));
    s.initialize(editor_capabilities(), options);
    s.wait_status(0, "ready", Duration::from_secs(30));
    s
}

/// The anchor lines planned after the last answered request.
fn planned(s: &mut Server) -> Vec<usize> {
    let last = s
        .request(
            "workspace/executeCommand",
            json!({"command": "ghostline.debugLastCompletion", "arguments": []}),
        )
        .ok();
    last["prefillStarts"]
        .as_array()
        .unwrap_or_else(|| panic!("no prefillStarts in {last}"))
        .iter()
        .map(|v| v.as_str().unwrap().parse().unwrap())
        .collect()
}

/// A Python file of `funcs` five-line functions.
fn python(funcs: usize) -> String {
    (0..funcs)
        .map(|i| format!("def f{i}(x):\n    y = x + {i}\n    return y\n\n\n"))
        .collect()
}

#[test]
fn an_answer_plans_the_cursors_band_and_its_neighbours() {
    let options = json!({"backend": "fake", "repoContext": {"enabled": false}});
    let mut s = started(options);
    let uri = file_uri("/work/plan.py");
    let text = python(300);
    s.open(&uri, "python", &text);
    // Line 1001 (inside f200): the default window (3000 characters, ~8 a line here) starts
    // about 370 lines up, at an anchor line (a multiple of 64).
    s.inline(&uri, 1001, 4, true);
    let lines = planned(&mut s);
    assert_eq!(lines.len(), 8, "{lines:?}");
    let own = lines[0];
    assert_eq!(own % 64, 0, "{lines:?}");
    assert!((576..=704).contains(&own), "{lines:?}");
    // Two below for one above, nearest first.
    assert_eq!(&lines[1..4], [own + 64, own + 128, own - 64], "{lines:?}");

    // A small file: its one band.
    let small = file_uri("/work/small.py");
    s.open(&small, "python", &python(3));
    s.inline(&small, 6, 4, true);
    assert_eq!(planned(&mut s), [0]);

    // Turned off: nothing planned.
    s.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": {"ghostline": {"prefill": {"enabled": false}}}}),
    );
    // (another place: the same one would be answered from the cache, without a model run)
    s.inline(&uri, 1006, 4, true);
    assert_eq!(planned(&mut s), Vec::<usize>::new());
    assert_eq!(s.shutdown().code(), Some(0));
}
