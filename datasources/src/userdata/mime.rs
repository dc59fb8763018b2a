//! Just enough MIME (RFC 2045/2046) for cloud-init user-data: headers with folding, multipart
//! bodies (nested), and base64 / quoted-printable transfer encodings.

use std::borrow::Cow;

use super::budget::{Budget, DecodeError};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Message {
    /// Header names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Message {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The media type, lower-cased (`text/cloud-config`), if any.
    pub fn content_type(&self) -> Option<String> {
        let ct = self.header("content-type")?;
        let main = ct.split(';').next()?.trim().to_ascii_lowercase();
        (!main.is_empty()).then_some(main)
    }

    /// A parameter of a header (`boundary`, `filename`, `name`), unquoted.
    pub fn param(&self, header: &str, param: &str) -> Option<String> {
        let value = self.header(header)?;
        value.split(';').skip(1).find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case(param)
                .then(|| v.trim().trim_matches('"').to_string())
        })
    }

    pub fn filename(&self) -> Option<String> {
        self.param("content-disposition", "filename")
            .or_else(|| self.param("content-type", "name"))
    }

    /// The body with its Content-Transfer-Encoding undone; what decoding produces is taken
    /// from `budget`.
    pub fn decoded_body(&self, budget: &Budget) -> Result<Cow<'_, [u8]>, DecodeError> {
        match self
            .header("content-transfer-encoding")
            .map(|v| v.trim().to_ascii_lowercase())
            .as_deref()
        {
            Some("base64") => budget.base64(&self.body).map(Cow::Owned),
            Some("quoted-printable") => {
                // Never longer than the encoded body.
                budget.take(self.body.len())?;
                Ok(Cow::Owned(decode_quoted_printable(&self.body)))
            }
            _ => Ok(Cow::Borrowed(&self.body)),
        }
    }
}

/// Splits a message into headers and body. Text without a header block is all body.
pub fn parse(data: &[u8]) -> Message {
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut pos = 0;
    loop {
        let end = data[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map(|i| pos + i)
            .unwrap_or(data.len());
        let line = trim_cr(&data[pos..end]);
        let next = (end + 1).min(data.len());
        if line.is_empty() {
            pos = next;
            break;
        }
        if (line[0] == b' ' || line[0] == b'\t') && !headers.is_empty() {
            if let Some(last) = headers.last_mut() {
                last.1.push(' ');
                last.1.push_str(String::from_utf8_lossy(line).trim());
            }
        } else if let Some(colon) = line.iter().position(|&b| b == b':') {
            let name = String::from_utf8_lossy(&line[..colon]).trim().to_string();
            if name.is_empty() || name.contains(' ') {
                // Not a header: there is no header block.
                return Message {
                    headers: Vec::new(),
                    body: data.to_vec(),
                };
            }
            let value = String::from_utf8_lossy(&line[colon + 1..])
                .trim()
                .to_string();
            headers.push((name.to_ascii_lowercase(), value));
        } else {
            return Message {
                headers: Vec::new(),
                body: data.to_vec(),
            };
        }
        if end >= data.len() {
            pos = data.len();
            break;
        }
        pos = next;
    }
    Message {
        headers,
        body: data[pos..].to_vec(),
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The parts of a multipart body, each still encoded, preamble and epilogue dropped. The parts
/// are slices of `body`: splitting copies nothing.
pub fn split_multipart<'b>(body: &'b [u8], boundary: &str) -> Vec<&'b [u8]> {
    let delimiter = format!("--{boundary}");
    let mut parts = Vec::new();
    // Where the current part starts, once a delimiter was seen.
    let mut current: Option<usize> = None;
    let mut offset = 0;
    for line in body.split_inclusive(|&b| b == b'\n') {
        let line_start = offset;
        offset += line.len();
        let bare = trim_cr(line.strip_suffix(b"\n").unwrap_or(line));
        let bare_trimmed = trim_trailing_ws(bare);
        if bare_trimmed == delimiter.as_bytes() {
            if let Some(start) = current.take() {
                parts.push(strip_final_newline(&body[start..line_start]));
            }
            current = Some(offset);
            continue;
        }
        if bare_trimmed.len() == delimiter.len() + 2
            && bare_trimmed.starts_with(delimiter.as_bytes())
            && bare_trimmed.ends_with(b"--")
        {
            if let Some(start) = current.take() {
                parts.push(strip_final_newline(&body[start..line_start]));
            }
            break;
        }
    }
    // An unterminated last part is still a part.
    if let Some(start) = current.take() {
        parts.push(strip_final_newline(&body[start.min(body.len())..]));
    }
    parts
}

fn trim_trailing_ws(s: &[u8]) -> &[u8] {
    let end = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    &s[..end]
}

/// The line break before a delimiter belongs to the delimiter (RFC 2046 §5.1.1).
fn strip_final_newline(p: &[u8]) -> &[u8] {
    match p.strip_suffix(b"\n") {
        Some(p) => p.strip_suffix(b"\r").unwrap_or(p),
        None => p,
    }
}

fn decode_quoted_printable(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'=' {
            // soft line break
            if input.get(i + 1) == Some(&b'\n') {
                i += 2;
                continue;
            }
            if input.get(i + 1) == Some(&b'\r') && input.get(i + 2) == Some(&b'\n') {
                i += 3;
                continue;
            }
            let hex = input
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            if let Some(byte) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(input[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_with_folding_and_crlf() {
        let m = parse(
            b"Content-Type: text/x-shellscript;\r\n charset=\"us-ascii\"\r\nX-A: b\r\n\r\nbody\r\n",
        );
        assert_eq!(m.content_type().as_deref(), Some("text/x-shellscript"));
        assert_eq!(
            m.param("content-type", "charset").as_deref(),
            Some("us-ascii")
        );
        assert_eq!(m.header("x-a"), Some("b"));
        assert_eq!(m.body, b"body\r\n");
    }

    #[test]
    fn text_without_headers_is_body() {
        let m = parse(b"#cloud-config\nhostname: a\n");
        assert!(m.headers.is_empty());
        assert_eq!(m.body, b"#cloud-config\nhostname: a\n");
    }

    #[test]
    fn multipart_split_drops_preamble_and_epilogue() {
        let body =
            b"preamble\n--XX\nContent-Type: text/plain\n\none\n--XX\n\ntwo\n--XX--\nepilogue\n";
        let parts = split_multipart(body, "XX");
        assert_eq!(parts.len(), 2);
        assert_eq!(parse(parts[0]).body, b"one");
        assert_eq!(parse(parts[1]).body, b"two");
    }

    #[test]
    fn transfer_encodings() {
        let budget = Budget::default();
        let m = parse(b"Content-Transfer-Encoding: base64\n\nI2Nsb3Vk\nLWNvbmZpZwo=\n");
        assert_eq!(&m.decoded_body(&budget).unwrap()[..], b"#cloud-config\n");
        let m = parse(b"Content-Transfer-Encoding: quoted-printable\n\na=3Db=\nc\n");
        assert_eq!(&m.decoded_body(&budget).unwrap()[..], b"a=bc\n");
        let m = parse(b"Content-Transfer-Encoding: base64\n\n!!!\n");
        assert!(m.decoded_body(&budget).is_err());
    }

    #[test]
    fn filename_from_disposition_or_name() {
        let m = parse(b"Content-Disposition: attachment; filename=\"a.sh\"\n\nx");
        assert_eq!(m.filename().as_deref(), Some("a.sh"));
        let m = parse(b"Content-Type: text/plain; name=b.cfg\n\nx");
        assert_eq!(m.filename().as_deref(), Some("b.cfg"));
    }
}
