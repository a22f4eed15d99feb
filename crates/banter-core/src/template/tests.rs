use super::*;
use crate::records::Sample;

fn chat(turns: &[(Role, &str, Option<&str>)]) -> Sample {
    Sample::chat(
        turns
            .iter()
            .map(|(r, c, n)| {
                let t = Turn::new(*r, *c);
                match n {
                    Some(n) => t.named(*n),
                    None => t,
                }
            })
            .collect(),
    )
}

#[test]
fn chatml_marks_every_assistant_turn() {
    let s = chat(&[
        (Role::System, "Be brief.", None),
        (Role::User, "hi", Some("Ali")),
        (Role::Assistant, "hello", None),
        (Role::User, "سلام", None),
        (Role::Assistant, "درود 👋", None),
    ]);
    let r = ChatTemplate::chatml().render(&s);
    assert_eq!(
        r.text,
        "<|system|>\nBe brief.<|end|>\n<|user|>\nAli: hi<|end|>\n<|assistant|>\nhello<|end|>\n\
         <|user|>\nسلام<|end|>\n<|assistant|>\nدرود 👋<|end|>\n"
    );
    let spans: Vec<&str> = r.loss_spans.iter().map(|s| &r.text[s.clone()]).collect();
    assert_eq!(spans, vec!["hello<|end|>", "درود 👋<|end|>"]);
    assert!(!r.eos_carries_loss());
}

#[test]
fn chatml_last_only_and_pairs() {
    let mut t = ChatTemplate::chatml();
    if let Style::Roles { loss, .. } = &mut t.style {
        *loss = LossOn::Last;
    }
    let s = chat(&[
        (Role::User, "a", None),
        (Role::Assistant, "b", None),
        (Role::User, "c", None),
        (Role::Assistant, "d", None),
    ]);
    assert_eq!(t.render(&s).loss_text(), "d<|end|>");
    let r = ChatTemplate::chatml().render(&Sample::pair("What is ML?", "A field of AI."));
    assert_eq!(r.text, "<|user|>\nWhat is ML?<|end|>\n<|assistant|>\nA field of AI.<|end|>\n");
    assert_eq!(r.loss_text(), "A field of AI.<|end|>");
}

#[test]
fn chatml_text_samples_are_all_loss() {
    let r = ChatTemplate::chatml().render(&Sample::text("plain text"));
    assert_eq!(r.text, "plain text");
    assert_eq!(r.loss_spans, vec![0..10]);
    assert!(r.eos_carries_loss());
}

#[test]
fn asimbot_assigns_speakers_and_learns_after_the_last_sys() {
    let s = chat(&[
        (Role::System, "Sara, 30, from Shiraz", None),
        (Role::User, "کجایی؟", Some("Ali")),
        (Role::User, "hey", Some("Reza")),
        (Role::Assistant, "خونه", None),
        (Role::User, "ok", Some("Ali")),
        (Role::Assistant, "see you 😂", None),
    ]);
    let r = ChatTemplate::asimbot().render(&s);
    assert_eq!(
        r.text,
        "Sara, 30, from Shiraz <SEP>\n<USR_A> کجایی؟\n<USR_B> hey\n<SYS> خونه\n<USR_A> ok\n<SYS> see you 😂"
    );
    assert_eq!(r.loss_text(), " see you 😂");
    assert!(r.eos_carries_loss());
    let cut = r.loss_spans[0].start;
    assert!(r.text[..cut].ends_with("<SYS>"));
}

#[test]
fn asimbot_text_samples_learn_after_the_last_sys_or_not_at_all() {
    let t = ChatTemplate::asimbot();
    let r = t.render(&Sample::text("<USR_A> hi <SYS> a <USR_B> yo <SYS> b"));
    assert_eq!(r.loss_text(), " b");
    let r = t.render(&Sample::text("<USR_A> no persona here"));
    assert!(!r.has_loss());
    assert!(!r.eos_carries_loss());
}

#[test]
fn speakers_beyond_the_limit_share_the_last_marker() {
    let mut t = ChatTemplate::asimbot();
    if let Style::Speakers { max_speakers, .. } = &mut t.style {
        *max_speakers = 2;
    }
    let s = chat(&[
        (Role::User, "1", Some("a")),
        (Role::User, "2", Some("b")),
        (Role::User, "3", Some("c")),
        (Role::Assistant, "x", None),
    ]);
    assert_eq!(t.render(&s).text, "<USR_A> 1\n<USR_B> 2\n<USR_B> 3\n<SYS> x");
    assert_eq!(t.special_tokens(), vec!["<SYS>", "<SEP>", "<USR_A>", "<USR_B>"]);
}

#[test]
fn generation_prompts_open_the_reply() {
    let turns = vec![Turn::new(Role::User, "hi")];
    assert_eq!(ChatTemplate::chatml().render_prompt(&turns).text, "<|user|>\nhi<|end|>\n<|assistant|>\n");
    assert_eq!(ChatTemplate::asimbot().render_prompt(&turns).text, "<USR_A> hi\n<SYS>");
    assert_eq!(ChatTemplate::asimbot().render_prompt(&[]).text, "<SYS>");
    assert!(!ChatTemplate::chatml().render_prompt(&turns).has_loss());
}

#[test]
fn templates_serialize_and_validate() {
    for name in PRESETS {
        let t = ChatTemplate::preset(name).unwrap();
        t.validate().unwrap();
        let back: ChatTemplate = serde_json::from_str(&t.to_json()).unwrap();
        assert_eq!(back, t);
    }
    let j = ChatTemplate::chatml().to_json();
    assert!(j.contains("\"style\": \"roles\""), "{j}");
    let bad = r#"{"name":"x","style":"roles","system":"<s>","user":"<u>","assistant":"<a>","end":"<a>"}"#;
    let t: ChatTemplate = serde_json::from_str(bad).unwrap();
    assert!(t.validate().is_err());
    let unknown =
        r#"{"name":"x","style":"roles","system":"<s>","user":"<u>","assistant":"<a>","end":"<e>","colour":1}"#;
    assert!(serde_json::from_str::<ChatTemplate>(unknown).is_err());
    assert!(ChatTemplate::preset("llama").is_err());
}

#[test]
fn stop_strings() {
    assert_eq!(ChatTemplate::chatml().stop_strings(), vec!["<|end|>"]);
    let s = ChatTemplate::asimbot().stop_strings();
    assert!(s.contains(&"<USR_A>".to_string()) && s.contains(&"<SYS>".to_string()));
}
