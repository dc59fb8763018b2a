//! cloud-init's cloud-config mergers (`cloudinit/mergers/m_{dict,list,str}.py`).
//!
//! A part says how it merges into what came before with `merge_how` / `merge_type` in its body or
//! a `Merge-Type` / `X-Merge-Type` MIME header; otherwise cloud-init's default for user-data
//! applies, `dict(replace)+list()+str()`: a later part's top-level keys replace earlier ones.

use yaml_serde::{Mapping, Value};

/// The merge rules of one part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mergers {
    dict_replace: bool,
    dict_recurse_array: bool,
    dict_recurse_str: bool,
    dict_allow_delete: bool,
    list: ListMethod,
    list_recurse_dict: bool,
    list_recurse_array: bool,
    list_recurse_str: bool,
    str_append: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListMethod {
    Replace,
    NoReplace,
    Append,
    Prepend,
}

impl Default for Mergers {
    /// `dict(replace)+list()+str()`.
    fn default() -> Self {
        Mergers::parse("dict(replace)+list()+str()").unwrap_or(Mergers {
            dict_replace: true,
            dict_recurse_array: false,
            dict_recurse_str: false,
            dict_allow_delete: false,
            list: ListMethod::Replace,
            list_recurse_dict: false,
            list_recurse_array: false,
            list_recurse_str: false,
            str_append: false,
        })
    }
}

impl Mergers {
    /// The string form: `dict(no_replace,recurse_list)+list(append)+str()`.
    pub fn parse(spec: &str) -> Result<Mergers, String> {
        let mut entries = Vec::new();
        for item in spec.split('+').map(str::trim).filter(|s| !s.is_empty()) {
            let (name, opts) = match item.split_once('(') {
                Some((n, rest)) => {
                    let inner = rest
                        .strip_suffix(')')
                        .ok_or_else(|| format!("merge type {item:?}: missing ')'"))?;
                    (
                        n.trim(),
                        inner.split(',').map(|o| o.trim().to_string()).collect(),
                    )
                }
                None => (item, Vec::new()),
            };
            entries.push((name.to_ascii_lowercase(), opts));
        }
        Self::from_entries(entries)
    }

    /// The list form: `[{name: list, settings: [append]}, …]`, or a string.
    pub fn from_value(v: &Value) -> Result<Mergers, String> {
        match v {
            Value::String(s) => Self::parse(s),
            Value::Sequence(items) => {
                let mut entries = Vec::new();
                for item in items {
                    let name = item
                        .get("name")
                        .and_then(Value::as_str)
                        .ok_or("merge_how entry without a name")?;
                    let settings = match item.get("settings") {
                        None | Some(Value::Null) => Vec::new(),
                        Some(Value::Sequence(s)) => s
                            .iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect(),
                        Some(_) => return Err("merge_how settings must be a list".into()),
                    };
                    entries.push((name.to_ascii_lowercase(), settings));
                }
                Self::from_entries(entries)
            }
            _ => Err("merge_how must be a string or a list".into()),
        }
    }

    fn from_entries(entries: Vec<(String, Vec<String>)>) -> Result<Mergers, String> {
        // Types not named keep cloud-init's class defaults (dict no_replace, list replace).
        let mut m = Mergers {
            dict_replace: false,
            dict_recurse_array: false,
            dict_recurse_str: false,
            dict_allow_delete: false,
            list: ListMethod::Replace,
            list_recurse_dict: false,
            list_recurse_array: false,
            list_recurse_str: false,
            str_append: false,
        };
        if entries.is_empty() {
            return Err("empty merge type".into());
        }
        for (name, opts) in entries {
            let has = |o: &str| opts.iter().any(|x| x == o);
            match name.as_str() {
                "dict" => {
                    m.dict_replace = has("replace");
                    m.dict_recurse_array = has("recurse_array") || has("recurse_list");
                    m.dict_recurse_str = has("recurse_str");
                    m.dict_allow_delete = has("allow_delete");
                }
                "list" => {
                    m.list = if has("append") {
                        ListMethod::Append
                    } else if has("prepend") {
                        ListMethod::Prepend
                    } else if has("no_replace") {
                        ListMethod::NoReplace
                    } else {
                        ListMethod::Replace
                    };
                    m.list_recurse_dict = has("recurse_dict");
                    m.list_recurse_array = has("recurse_array") || has("recurse_list");
                    m.list_recurse_str = has("recurse_str");
                }
                "str" => m.str_append = has("append"),
                other => return Err(format!("unknown merge type {other:?}")),
            }
        }
        Ok(m)
    }

    /// Merges `new` into `old` and returns the result.
    pub fn merge(&self, old: Value, new: Value) -> Value {
        match old {
            Value::Mapping(map) => match new {
                Value::Mapping(with) => Value::Mapping(self.merge_dict(map, with)),
                _ => Value::Mapping(map),
            },
            Value::Sequence(list) => self.merge_list(list, new),
            Value::String(s) => match new {
                Value::String(n) if self.str_append => Value::String(s + &n),
                other => other,
            },
            _ => new,
        }
    }

    fn merge_dict(&self, mut value: Mapping, with: Mapping) -> Mapping {
        for (k, v) in with {
            if v.is_null() && self.dict_allow_delete && value.contains_key(&k) {
                value.remove(&k);
                continue;
            }
            // The old value is moved out and back, not cloned: cloning it made merging many
            // parts into a large list cost parts × size.
            match value.get_mut(&k) {
                None => {
                    value.insert(k, v);
                }
                Some(slot) => {
                    let old = std::mem::take(slot);
                    let merged = if self.dict_replace {
                        v
                    } else {
                        match &v {
                            Value::Sequence(_) if self.dict_recurse_array => self.merge(old, v),
                            Value::String(_) if self.dict_recurse_str => self.merge(old, v),
                            // cloud-init always recurses into dicts under no_replace.
                            Value::Mapping(_) => self.merge(old, v),
                            _ => old,
                        }
                    };
                    *slot = merged;
                }
            }
        }
        value
    }

    fn merge_list(&self, list: Vec<Value>, new: Value) -> Value {
        let with = match new {
            Value::Sequence(w) => w,
            other => {
                return if self.list == ListMethod::Replace {
                    other
                } else {
                    Value::Sequence(list)
                }
            }
        };
        match self.list {
            ListMethod::Append => {
                // Extended in place: collecting into a new list copied all that was merged
                // before, for every part.
                let mut list = list;
                list.extend(with);
                Value::Sequence(list)
            }
            ListMethod::Prepend => Value::Sequence(with.into_iter().chain(list).collect()),
            ListMethod::NoReplace | ListMethod::Replace => {
                let mut merged = list;
                for (i, new_v) in with.into_iter().enumerate() {
                    if i >= merged.len() {
                        break;
                    }
                    if self.list == ListMethod::NoReplace {
                        continue;
                    }
                    let old_v = std::mem::take(&mut merged[i]);
                    merged[i] = match &new_v {
                        Value::Sequence(_) if self.list_recurse_array => self.merge(old_v, new_v),
                        Value::String(_) if self.list_recurse_str => self.merge(old_v, new_v),
                        Value::Mapping(_) if self.list_recurse_dict => self.merge(old_v, new_v),
                        _ => new_v,
                    };
                }
                Value::Sequence(merged)
            }
        }
    }
}

/// The mergers a part asks for: its body's `merge_how`/`merge_type`, then its MIME header.
pub fn mergers_for(doc: &Mapping, header: Option<&str>) -> Result<Mergers, String> {
    for key in ["merge_how", "merge_type"] {
        if let Some(v) = doc.get(key) {
            return Mergers::from_value(v);
        }
    }
    match header {
        Some(h) => Mergers::parse(h),
        None => Ok(Mergers::default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn y(s: &str) -> Value {
        yaml_serde::from_str(s).unwrap()
    }

    #[test]
    fn default_replaces_top_level_keys() {
        let m = Mergers::default();
        let out = m.merge(
            y("{runcmd: [a], ntp: {servers: [x]}, k: 1}"),
            y("{runcmd: [b], ntp: {pools: [p]}}"),
        );
        assert_eq!(out, y("{runcmd: [b], ntp: {pools: [p]}, k: 1}"));
    }

    #[test]
    fn documented_append_example() {
        let spec = y("[{name: list, settings: [append]}, {name: dict, settings: [no_replace, recurse_list]}]");
        let m = Mergers::from_value(&spec).unwrap();
        let out = m.merge(y("{runcmd: [bash1, bash2]}"), y("{runcmd: [bash3, bash4]}"));
        assert_eq!(out, y("{runcmd: [bash1, bash2, bash3, bash4]}"));
    }

    /// Seconds to merge `parts` parts of 1,000 `runcmd` items each.
    fn time_appending(parts: usize) -> f64 {
        let m = Mergers::parse("dict(recurse_array)+list(append)").unwrap();
        let part: Value = y(&format!(
            "{{runcmd: [{}]}}",
            vec!["echo x"; 1000].join(", ")
        ));
        let start = std::time::Instant::now();
        let mut acc = Value::Mapping(Mapping::new());
        for _ in 0..parts {
            acc = m.merge(acc, part.clone());
        }
        assert_eq!(
            acc["runcmd"].as_sequence().map(Vec::len),
            Some(parts * 1000)
        );
        start.elapsed().as_secs_f64()
    }

    #[test]
    fn appending_many_parts_is_linear() {
        // Copying what was merged before at each part makes 10 times the parts cost 100 times
        // as long; in place it is about 10 times.
        // The best of a few runs of each size: tests run in parallel, so one slow run must
        // not decide.
        let best = |n: usize| (0..3).map(|_| time_appending(n)).fold(f64::MAX, f64::min);
        let small = best(25).max(0.02);
        let large = best(250);
        assert!(
            large < 30.0 * small,
            "25 parts {small:.4}s, 250 parts {large:.4}s"
        );
    }

    #[test]
    fn no_replace_keeps_old_scalars_and_recurses_dicts() {
        let m = Mergers::parse("dict(no_replace)+list()").unwrap();
        let out = m.merge(y("{a: 1, d: {x: 1}}"), y("{a: 2, b: 3, d: {x: 2, y: 3}}"));
        assert_eq!(out, y("{a: 1, b: 3, d: {x: 1, y: 3}}"));
    }

    #[test]
    fn allow_delete_and_str_append() {
        let m = Mergers::parse("dict(no_replace,allow_delete,recurse_str)+str(append)").unwrap();
        let out = m.merge(y("{a: 1, s: foo}"), y("{a: null, s: bar}"));
        assert_eq!(out, y("{s: foobar}"));
    }

    #[test]
    fn list_prepend() {
        let m = Mergers::parse("dict(recurse_array)+list(prepend)").unwrap();
        let out = m.merge(y("{l: [a]}"), y("{l: [b]}"));
        assert_eq!(out, y("{l: [b, a]}"));
    }

    #[test]
    fn bad_specs_are_errors() {
        assert!(Mergers::parse("dict(replace").is_err());
        assert!(Mergers::parse("frob()").is_err());
        assert!(Mergers::from_value(&y("42")).is_err());
        assert!(mergers_for(&Mapping::new(), Some("list(append)+dict(recurse_array)")).is_ok());
    }
}
