//! The prompt: the computed result as JSON and an instruction to phrase it
//! without adding causes. Bounded: bulky fields go first when the JSON is
//! larger than [`PROMPT_BYTES_MAX`].

use serde_json::Value;

/// Largest JSON put in a prompt, in bytes.
pub const PROMPT_BYTES_MAX: usize = 24 * 1024;
/// Fields dropped, in this order, while the JSON is too large.
const BULKY: [&str; 9] =
    ["changes", "edge_changes", "edge_anomalies", "dependency_graph", "critical_path", "chains", "anomalies", "counterfactuals", "results"];
/// Candidates kept when even that is not enough.
const CANDIDATES_KEPT: usize = 5;

const SYSTEM: &str = "You explain the result of a root-cause analysis that was already computed from traces, logs and metrics. \
Use only facts present in the JSON you are given. Do not add causes, services, operations, numbers or advice that are not in it, \
and do not change the ranking: the first candidate is the most likely root cause. If the JSON names no root cause, say that \
nothing stood out. Answer in at most five plain sentences.";

/// (system, user) messages for `computed`.
pub fn prompt(computed: &Value, deterministic: &str) -> (String, String) {
    let json = bounded(computed);
    let user = format!(
        "Computed result (JSON):\n{json}\n\nDeterministic summary of it:\n{deterministic}\n\nRewrite the summary for an on-call engineer."
    );
    (SYSTEM.to_owned(), user)
}

fn bounded(computed: &Value) -> String {
    let mut value = computed.clone();
    if let Value::Object(fields) = &mut value {
        fields.remove("explanation");
        fields.remove("explanation_source");
        for key in BULKY {
            if size(&Value::Object(fields.clone())) <= PROMPT_BYTES_MAX {
                break;
            }
            fields.remove(key);
        }
        if let Some(Value::Array(candidates)) = fields.get_mut("candidates") {
            candidates.truncate(CANDIDATES_KEPT);
        }
    }
    let text = value.to_string();
    if text.len() <= PROMPT_BYTES_MAX {
        return text;
    }
    // Still too large: cut (the model sees a truncated JSON and is told so).
    let mut end = PROMPT_BYTES_MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{} …(truncated)", &text[..end])
}

fn size(v: &Value) -> usize {
    v.to_string().len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_prompt_carries_the_result_and_forbids_new_causes() {
        let (system, user) = prompt(&json!({"root_cause": {"service": "db"}, "explanation": "x"}), "db is the cause.");
        assert!(system.contains("Do not add causes"));
        assert!(user.contains(r#"{"root_cause":{"service":"db"}}"#), "{user}");
        assert!(user.contains("db is the cause."));
    }

    #[test]
    fn large_results_are_bounded() {
        let big: Vec<Value> = (0..5_000).map(|i| json!({"service": format!("s{i}")})).collect();
        let (_, user) = prompt(&json!({"root_cause": {"service": "db"}, "changes": big.clone(), "candidates": big}), "");
        assert!(user.len() < PROMPT_BYTES_MAX + 1_000, "{}", user.len());
        assert!(user.contains("\"root_cause\""));
        assert!(!user.contains("\"changes\""));
    }
}
