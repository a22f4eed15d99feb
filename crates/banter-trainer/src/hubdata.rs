//! Rows of a Hub dataset (JSON Lines, JSON, Parquet files of a split) as samples, with a column mapping:
//! a conversation column (`messages`, `conversations`: role/content or from/value turns), a prompt and a
//! response (`prompt`/`instruction`/`question` with `response`/`output`/`answer`; Alpaca's `input` joins the
//! instruction), or text. OpenAssistant-style message trees (`message_id`, `parent_id`, `role`
//! prompter/assistant, `text`) are flattened: every path from a root to a reply is one conversation.

use std::collections::HashMap;
use std::path::Path;

use banter_core::records::{Role, Sample, Turn};
use banter_core::{Error, FieldError};
use serde_json::Value;

/// Which columns hold what (`None`: found by the usual names).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Columns {
    /// Conversations (lists of turns).
    pub messages: Option<String>,
    /// The prompt.
    pub prompt: Option<String>,
    /// The reply.
    pub response: Option<String>,
    /// Plain text.
    pub text: Option<String>,
}

/// Every row of a data file as a JSON object.
pub fn rows(path: &Path) -> Result<Vec<Value>, Error> {
    let name = path.to_string_lossy();
    if name.ends_with(".parquet") {
        use parquet::file::reader::{FileReader, SerializedFileReader};
        let f = std::fs::File::open(path).map_err(|e| Error::io(path.display(), e))?;
        let bad = |e: parquet::errors::ParquetError| {
            Error::data(path.display(), None, FieldError::record(format!("not a readable Parquet file: {e}")))
        };
        let reader = SerializedFileReader::new(f).map_err(bad)?;
        let iter = reader.get_row_iter(None).map_err(bad)?;
        return iter.map(|r| r.map(|row| row.to_json_value()).map_err(bad)).collect();
    }
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path.display(), e))?;
    if name.ends_with(".json") && text.trim_start().starts_with('[') {
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| Error::data(path.display(), None, FieldError::record(format!("not JSON: {e}"))))?;
        return Ok(v.as_array().cloned().unwrap_or_default());
    }
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| {
                Error::data(path.display(), Some(i as u64 + 1), FieldError::record(format!("not JSON: {e}")))
            })
        })
        .collect()
}

fn role_of(s: &str) -> Option<Role> {
    match s.to_ascii_lowercase().as_str() {
        "user" | "human" | "prompter" | "question" => Some(Role::User),
        "assistant" | "gpt" | "bot" | "model" | "answer" => Some(Role::Assistant),
        "system" => Some(Role::System),
        _ => None,
    }
}

fn first<'a>(row: &'a Value, given: &Option<String>, names: &[&str]) -> Option<(&'a str, String)> {
    let keys: Vec<String> = match given {
        Some(g) => vec![g.clone()],
        None => names.iter().map(|s| s.to_string()).collect(),
    };
    keys.into_iter().find_map(|k| row.get(&k).and_then(Value::as_str).map(|v| (v, k)))
}

fn conversation(v: &Value) -> Option<Vec<Turn>> {
    let turns: Vec<Turn> = v
        .as_array()?
        .iter()
        .filter_map(|t| {
            let role = t.get("role").or_else(|| t.get("from")).and_then(Value::as_str).and_then(role_of)?;
            let content =
                t.get("content").or_else(|| t.get("value")).or_else(|| t.get("text")).and_then(Value::as_str)?;
            Some(Turn::new(role, content))
        })
        .collect();
    turns.iter().any(|t| t.role == Role::Assistant).then_some(turns)
}

/// OpenAssistant's trees: every root-to-reply path, one conversation each.
fn flatten_trees(rows: &[Value]) -> Vec<Sample> {
    let id = |r: &Value| r.get("message_id").and_then(Value::as_str).map(str::to_string);
    let parent = |r: &Value| r.get("parent_id").and_then(Value::as_str).map(str::to_string);
    let by_id: HashMap<String, &Value> = rows.iter().filter_map(|r| id(r).map(|i| (i, r))).collect();
    let has_child: std::collections::HashSet<String> = rows.iter().filter_map(parent).collect();
    let mut out = Vec::new();
    for leaf in rows.iter().filter(|r| id(r).is_some_and(|i| !has_child.contains(&i))) {
        let mut path = Vec::new();
        let mut cur = Some(leaf);
        while let Some(r) = cur {
            path.push(r);
            cur = parent(r).and_then(|p| by_id.get(&p).copied());
            if path.len() > 10_000 {
                break;
            }
        }
        path.reverse();
        let mut turns: Vec<Turn> = path
            .iter()
            .filter_map(|r| {
                let role = r.get("role").and_then(Value::as_str).and_then(role_of)?;
                Some(Turn::new(role, r.get("text").and_then(Value::as_str).unwrap_or_default()))
            })
            .collect();
        while turns.last().is_some_and(|t| t.role != Role::Assistant) {
            turns.pop();
        }
        if !turns.is_empty() {
            out.push(Sample::chat(turns));
        }
    }
    out
}

/// Rows as samples; what was found, in words (which columns, how many rows left out).
pub fn samples(rows: &[Value], c: &Columns, what: &str) -> Result<(Vec<Sample>, String), Error> {
    if c == &Columns::default()
        && rows.first().is_some_and(|r| r.get("message_id").is_some() && r.get("parent_id").is_some())
    {
        let s = flatten_trees(rows);
        let n = s.len();
        return Ok((
            s,
            format!("{what}: {} message(s) in trees, {n} conversation(s) (every path to a reply)", rows.len()),
        ));
    }
    let mut out = Vec::new();
    let mut used = String::new();
    let mut skipped = 0;
    for r in rows {
        let msgs = match &c.messages {
            Some(m) => r.get(m),
            None => ["messages", "conversations", "conversation"].iter().find_map(|k| r.get(*k)),
        };
        if let Some(turns) = msgs.and_then(conversation) {
            used = "conversations".into();
            out.push(Sample::chat(turns));
            continue;
        }
        let prompt = first(r, &c.prompt, &["prompt", "instruction", "question", "query"]);
        let response = first(r, &c.response, &["response", "output", "answer", "completion"]);
        if let (Some((p, pk)), Some((a, ak))) = (prompt, response) {
            let extra = if pk == "instruction" {
                r.get("input").and_then(Value::as_str).filter(|s| !s.is_empty())
            } else {
                None
            };
            let p = match extra {
                Some(x) => format!("{p}\n\n{x}"),
                None => p.to_string(),
            };
            used = format!("{pk} → {ak}");
            out.push(Sample::pair(p, a));
            continue;
        }
        if let Some((t, k)) = first(r, &c.text, &["text", "content"]) {
            used = format!("{k} as text");
            out.push(Sample::text(t));
            continue;
        }
        skipped += 1;
    }
    if out.is_empty() {
        let cols: Vec<String> =
            rows.first().and_then(Value::as_object).map(|o| o.keys().cloned().collect()).unwrap_or_default();
        return Err(Error::usage_hint(
            format!("{what}: no row has a conversation, a prompt and response, or text (columns: {})", cols.join(", ")),
            "name the columns: --prompt-column, --response-column, --messages-column or --text-column",
        ));
    }
    let n = out.len();
    Ok((
        out,
        format!(
            "{what}: {n} sample(s) from {used}{}",
            if skipped > 0 { format!(", {skipped} row(s) without them left out") } else { String::new() }
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn oasst_trees_flatten_to_every_path_that_ends_in_a_reply() {
        let rows = vec![
            json!({"message_id": "a", "parent_id": null, "role": "prompter", "text": "hi"}),
            json!({"message_id": "b", "parent_id": "a", "role": "assistant", "text": "hello"}),
            json!({"message_id": "c", "parent_id": "a", "role": "assistant", "text": "hey"}),
            json!({"message_id": "d", "parent_id": "b", "role": "prompter", "text": "how are you?"}),
        ];
        let (s, _) = samples(&rows, &Columns::default(), "t").unwrap();
        assert_eq!(s.len(), 2, "a→b (d trimmed: no reply) and a→c");
    }

    #[test]
    fn columns_by_name_or_given() {
        let rows = vec![json!({"instruction": "add", "input": "2 and 3", "output": "5"})];
        let (s, note) = samples(&rows, &Columns::default(), "t").unwrap();
        assert_eq!(s[0], Sample::pair("add\n\n2 and 3", "5"));
        assert!(note.contains("instruction → output"), "{note}");
        let rows = vec![json!({"q": "x?", "a": "y"})];
        assert!(samples(&rows, &Columns::default(), "t").is_err());
        let c = Columns { prompt: Some("q".into()), response: Some("a".into()), ..Default::default() };
        assert_eq!(samples(&rows, &c, "t").unwrap().0[0], Sample::pair("x?", "y"));
        let rows = vec![json!({"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}]})];
        assert_eq!(samples(&rows, &Columns::default(), "t").unwrap().0.len(), 1);
    }
}
