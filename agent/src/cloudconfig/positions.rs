//! Where each node of a YAML document is, by path (`users[1].lock_passwd`), so that `wisp schema`
//! can point at every problem with its line and column. The index is made by the YAML loader's
//! own event walk (`yaml::load` returns it in `Loaded::positions`): a text is walked once, and
//! the loader and the positions cannot disagree about its nodes.

pub use wisp_datasources::userdata::yaml::{Pos, Positions};
#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "#cloud-config\nusers:\n  - default\n  - name: alice\n    lock_passwd: maybe\n    groups: [wheel, 'op']\nwrite_files:\n- {path: /etc/x, permissions: 0644}\nruncmd:\n  - [ls, -l]\n";

    fn at(line: usize, column: usize) -> Option<Pos> {
        Some(Pos { line, column })
    }

    #[test]
    fn keys_and_values_of_nested_nodes() {
        let p = Positions::of(DOC);
        assert_eq!(p.key("users"), at(2, 1));
        assert_eq!(p.value("users[0]"), at(3, 5));
        assert_eq!(p.key("users[1].lock_passwd"), at(5, 5));
        assert_eq!(p.value("users[1].lock_passwd"), at(5, 18));
        assert_eq!(p.value("users[1].groups[1]"), at(6, 21));
        assert_eq!(p.value("write_files[0].permissions"), at(8, 31));
        assert_eq!(p.value("runcmd[0][1]"), at(10, 10));
        assert_eq!(p.plain("write_files[0].permissions"), Some("0644"));
        assert_eq!(p.plain("users[1].groups[1]"), None, "quoted");
    }

    #[test]
    fn unknown_paths_fall_back_to_the_nearest_ancestor() {
        let p = Positions::of(DOC);
        assert_eq!(p.value("users[1].shell"), at(4, 5));
        assert_eq!(p.key("nope"), None);
    }

    #[test]
    fn keys_with_dots_and_brackets_are_found() {
        let p = Positions::of("a.b:\n  c[0]: 1\na:\n  b: 2\n");
        assert_eq!(p.value("a.b.c[0]"), at(2, 9));
        assert_eq!(p.value("a.b"), at(4, 6));
        assert_eq!(p.value("a.b.x"), at(4, 6), "the deepest that exists");
    }

    /// Seconds to index `text`.
    fn time_of(text: &str) -> f64 {
        let start = std::time::Instant::now();
        let p = Positions::of(text);
        assert!(p.len() > 5_000);
        start.elapsed().as_secs_f64()
    }

    #[test]
    fn memory_and_time_are_linear_in_long_keys() {
        // A path string per node would copy the long key into each of its 5,000 items:
        // 250 MB for a 50 KB key. Each node keeping only its own segment costs the same either
        // way, but for reading the key once.
        let doc = |key: usize| {
            // An explicit key (`? `): a plain one is at most 1024 characters.
            let mut s = format!("? {}\n:\n", "k".repeat(key));
            s.push_str(&"  - x\n".repeat(5_000));
            s
        };
        let short = doc(1);
        let long = doc(50_000);
        let p = Positions::of(&long);
        let key = "k".repeat(50_000);
        assert_eq!(p.value(&format!("{key}[4999]")), at(5_002, 5));
        let base = time_of(&short).max(0.02);
        let t = time_of(&long);
        assert!(t < 10.0 * base, "short key {base:.4}s, 50 KB key {t:.4}s");
    }

    #[test]
    fn indexing_stops_at_the_depth_limit() {
        let deep =
            |levels: usize| format!("a: {}{}\nb: 1\n", "[".repeat(levels), "]".repeat(levels));
        let timed = |text: &str| {
            let start = std::time::Instant::now();
            let p = Positions::of(text);
            (start.elapsed().as_secs_f64(), p)
        };
        let (small, _) = timed(&deep(1_000));
        let (large, p) = timed(&deep(100_000));
        assert_eq!(p.key("a"), at(1, 1));
        assert_eq!(p.key("b"), None, "indexing stopped");
        // Indexed in full, 100 times the levels cost 10,000 times as long.
        assert!(large < 20.0 * small.max(0.02), "{small}s, {large}s");
        let (_, q) = timed(&deep(60));
        assert_eq!(q.key("b"), at(2, 1));
    }

    #[test]
    fn broken_documents_index_what_came_before() {
        let p = Positions::of("a: 1\nb: [unclosed\nc: 2\n");
        assert_eq!(p.key("a"), at(1, 1));
        assert_eq!(p.key("c"), None);
        let _ = Positions::of("");
        let p = Positions::of("? [complex, key]\n: value\nafter: 1\n");
        assert_eq!(p.key("after"), at(3, 1));
    }
}
