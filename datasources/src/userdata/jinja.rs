//! `## template: jinja` parts: wisp renders variable references (`{{ v1.local_hostname }}`,
//! `{{ ds.meta_data.x }}`) from the instance data and removes comments. Statements (`{% … %}`)
//! and filters are not supported: such a part is reported and skipped rather than half-rendered.

use serde_json::Value;

/// cloud-init's placeholder for a variable the instance data lacks.
pub const MISSING_PREFIX: &str = "CI_MISSING_JINJA_VAR/";

#[derive(Debug, Default)]
pub struct Rendered {
    pub text: String,
    /// Variables that were not found (rendered as `CI_MISSING_JINJA_VAR/<name>`).
    pub missing: Vec<String>,
}

/// Renders `template` (without its `## template: jinja` line).
pub fn render(template: &str, data: &Value) -> Result<Rendered, String> {
    let mut out = Rendered::default();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let (before, tail) = rest.split_at(start);
        out.text.push_str(before);
        if let Some(body) = tail.strip_prefix("{{") {
            let end = body.find("}}").ok_or("unterminated '{{'")?;
            let expr = body[..end].trim();
            out.text
                .push_str(&render_expr(expr, data, &mut out.missing)?);
            rest = &body[end + 2..];
        } else if let Some(body) = tail.strip_prefix("{#") {
            let end = body.find("#}").ok_or("unterminated '{#'")?;
            rest = &body[end + 2..];
        } else if tail.starts_with("{%") {
            let stmt: String = tail.chars().take(40).collect();
            return Err(format!(
                "jinja statements are not supported by wisp (found {stmt:?}); only {{{{ variable }}}} references are"
            ));
        } else {
            out.text.push('{');
            rest = &tail[1..];
        }
    }
    out.text.push_str(rest);
    Ok(out)
}

fn render_expr(expr: &str, data: &Value, missing: &mut Vec<String>) -> Result<String, String> {
    let valid = !expr.is_empty()
        && expr
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !expr.starts_with('.')
        && !expr.ends_with('.');
    if !valid {
        return Err(format!(
            "jinja expression {{{{ {expr} }}}} is not supported by wisp: only dotted variable names are"
        ));
    }
    match lookup(data, expr) {
        Some(v) => Ok(to_text(v)),
        None => {
            missing.push(expr.to_string());
            Ok(format!("{MISSING_PREFIX}{expr}"))
        }
    }
}

/// Dotted lookup. Like cloud-init, `-` and `_` in keys are interchangeable and the `v1` keys are
/// also reachable at the top level (`{{ local_hostname }}`).
fn lookup<'a>(data: &'a Value, path: &str) -> Option<&'a Value> {
    let walk = |root: &'a Value| {
        path.split('.').try_fold(root, |v, seg| {
            let obj = v.as_object()?;
            obj.get(seg)
                .or_else(|| obj.get(&seg.replace('_', "-")))
                .or_else(|| obj.get(&seg.replace('-', "_")))
        })
    };
    walk(data).or_else(|| data.get("v1").and_then(walk))
}

/// What Python's `str()` would print for simple values.
fn to_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> Value {
        serde_json::json!({
            "v1": {"local_hostname": "node1.maas", "instance_id": "abc", "public_ssh_keys": ["k"]},
            "ds": {"meta_data": {"local-hostname": "node1.maas", "flag": true}}
        })
    }

    #[test]
    fn renders_variables_aliases_and_comments() {
        let r = render(
            "#cloud-config\nhostname: {{ v1.local_hostname }}\nid: {{instance_id}}\n{# note #}x: {{ ds.meta_data.local_hostname }} {{ ds.meta_data.flag }}\n",
            &data(),
        )
        .unwrap();
        assert_eq!(
            r.text,
            "#cloud-config\nhostname: node1.maas\nid: abc\nx: node1.maas True\n"
        );
        assert!(r.missing.is_empty());
    }

    #[test]
    fn missing_variables_are_marked_like_cloud_init() {
        let r = render("a: {{ v1.nope }}", &data()).unwrap();
        assert_eq!(r.text, "a: CI_MISSING_JINJA_VAR/v1.nope");
        assert_eq!(r.missing, vec!["v1.nope"]);
    }

    #[test]
    fn statements_and_filters_are_refused() {
        assert!(render("{% if x %}y{% endif %}", &data())
            .unwrap_err()
            .contains("statements"));
        assert!(render("{{ x | upper }}", &data())
            .unwrap_err()
            .contains("not supported"));
        assert!(render("{{ x ", &data())
            .unwrap_err()
            .contains("unterminated"));
    }

    #[test]
    fn lone_braces_pass_through() {
        assert_eq!(render("a: {b: 1}", &data()).unwrap().text, "a: {b: 1}");
    }
}
