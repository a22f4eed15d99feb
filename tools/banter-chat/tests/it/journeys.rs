//! The seed projects' journeys through banter-chat (issue 28): the server's randomness.

use crate::serve::start;

fn ask(base: &str, body: &serde_json::Value) -> String {
    let c = reqwest::blocking::Client::new();
    let r = c.post(format!("{base}/v1/chat/completions")).json(body).send().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v: serde_json::Value = r.json().unwrap();
    v["choices"][0]["message"]["content"].as_str().unwrap().to_string()
}

/// Sampled requests without a `seed` draw fresh randomness (OpenAI's semantics); `seed` makes a reply
/// reproducible; `serve --seed N` seeds every request that gives none.
#[test]
fn unseeded_requests_draw_fresh_randomness_and_seeded_ones_repeat() {
    let body = serde_json::json!({"messages": [{"role": "user", "content": "tell me something"}],
        "temperature": 1.5, "top_k": 0, "top_p": 1.0, "max_tokens": 24});
    let s = start(&[]);
    let replies: Vec<String> = (0..4).map(|_| ask(&s.base, &body)).collect();
    assert!(replies.iter().any(|r| r != &replies[0]), "four unseeded replies were identical: {replies:?}");
    let mut seeded = body.clone();
    seeded["seed"] = 7.into();
    assert_eq!(ask(&s.base, &seeded), ask(&s.base, &seeded));
    seeded["seed"] = "seven".into();
    let r =
        reqwest::blocking::Client::new().post(format!("{}/v1/chat/completions", s.base)).json(&seeded).send().unwrap();
    assert_eq!(r.status().as_u16(), 400, "a seed that is not an integer is refused");
    drop(s);
    let fixed = start(&["--seed", "5"]);
    assert_eq!(ask(&fixed.base, &body), ask(&fixed.base, &body));
}
