//! A bound on how deep YAML collections nest, checked before a text reaches serde_yaml.
//! libyaml's scanner does work in proportion to the open flow levels for every token, so
//! 100,000 levels of `[` (200 KB) cost a minute of CPU before serde_yaml's own recursion limit
//! is ever reached. This walks the same parser's events and stops at the first level too deep,
//! so a deep document costs no more than a shallow one of the allowed depth.

use std::mem::MaybeUninit;

use unsafe_libyaml as unsafe_yaml;

/// How deep YAML maps and lists may nest. cloud-config never needs more than a handful.
pub const MAX_YAML_DEPTH: usize = 64;

/// A collection opened deeper than the limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: YAML collections nest deeper than {max} levels")]
pub struct TooDeep {
    /// 1-based line of the first collection too deep.
    pub line: usize,
    pub max: usize,
}

/// Checks that no collection of `text` nests deeper than `max` levels. Syntax errors are not
/// reported here: the YAML reader that comes next names them.
pub fn check_depth(text: &[u8], max: usize) -> Result<(), TooDeep> {
    let mut depth = 0usize;
    // SAFETY: the parser is initialised before use and deleted once; `text` outlives it; every
    // event libyaml filled in is deleted exactly once, after its fields were read.
    unsafe {
        let mut parser = MaybeUninit::<unsafe_yaml::yaml_parser_t>::uninit();
        if unsafe_yaml::yaml_parser_initialize(parser.as_mut_ptr()).fail {
            return Ok(());
        }
        let parser = parser.as_mut_ptr();
        unsafe_yaml::yaml_parser_set_input_string(parser, text.as_ptr(), text.len() as u64);
        let mut result = Ok(());
        loop {
            let mut event = MaybeUninit::<unsafe_yaml::yaml_event_t>::uninit();
            if unsafe_yaml::yaml_parser_parse(parser, event.as_mut_ptr()).fail {
                break;
            }
            let event = event.as_mut_ptr();
            let kind = (*event).type_;
            let line = (*event).start_mark.line as usize + 1;
            unsafe_yaml::yaml_event_delete(event);
            match kind {
                unsafe_yaml::YAML_MAPPING_START_EVENT | unsafe_yaml::YAML_SEQUENCE_START_EVENT => {
                    depth += 1;
                    if depth > max {
                        result = Err(TooDeep { line, max });
                        break;
                    }
                }
                unsafe_yaml::YAML_MAPPING_END_EVENT | unsafe_yaml::YAML_SEQUENCE_END_EVENT => {
                    depth = depth.saturating_sub(1);
                }
                unsafe_yaml::YAML_STREAM_END_EVENT => break,
                _ => {}
            }
        }
        unsafe_yaml::yaml_parser_delete(parser);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_is_counted_over_flow_and_block_collections() {
        // The top map, the list, then `[1]` and `{b: …}`, then `[2]`: four levels.
        assert_eq!(check_depth(b"a: [[1], {b: [2]}]\n", 4), Ok(()));
        assert_eq!(
            check_depth(b"a: [[1], {b: [2]}]\n", 3),
            Err(TooDeep { line: 1, max: 3 })
        );
        assert_eq!(
            check_depth(b"a:\n  b:\n    - - x\n", 3),
            Err(TooDeep { line: 3, max: 3 })
        );
        // Brackets in scalars and block text are not collections.
        assert_eq!(
            check_depth(b"a: '[[[[' \nb: |\n  [[[[[[\nc: x[[[[\n", 1),
            Ok(())
        );
        // Syntax errors are left to the reader.
        assert_eq!(check_depth(b"a: [unclosed\n", 2), Ok(()));
    }
}
