//! Single-record CSV splitting for `--mount` and `--device` values
//! (upstream `go-csvvalue` with Go `encoding/csv` rules and messages).

const BARE_QUOTE: &str = "bare \" in non-quoted-field";
const BAD_QUOTE: &str = "extraneous or missing \" in quoted-field";

fn parse_err(pos: usize, what: &str) -> String {
    format!("parse error on line 1, column {}: {what}", pos + 1)
}

/// Splits one CSV record. Errors: `EOF` for empty input, Go `csv`
/// messages for quoting errors.
pub(crate) fn fields(input: &str) -> Result<Vec<String>, String> {
    let line = input
        .strip_suffix("\r\n")
        .or_else(|| input.strip_suffix('\n'))
        .unwrap_or(input);
    if line.is_empty() {
        return Err("EOF".to_string());
    }
    let mut out = Vec::new();
    let mut rest = line;
    let mut pos = 0;
    loop {
        if !rest.starts_with('"') {
            let (field, next) = match rest.find(',') {
                Some(i) => (&rest[..i], Some(&rest[i + 1..])),
                None => (rest, None),
            };
            if let Some(j) = field.find('"') {
                return Err(parse_err(pos + j, BARE_QUOTE));
            }
            out.push(field.to_string());
            match next {
                Some(n) => {
                    pos += field.len() + 1;
                    rest = n;
                }
                None => return Ok(out),
            }
            continue;
        }
        let (field, consumed, more) = quoted(&rest[1..], pos + 1)?;
        out.push(field);
        if !more {
            return Ok(out);
        }
        pos += 1 + consumed;
        rest = &rest[1 + consumed..];
    }
}

/// Reads a quoted field body (after the opening quote). Returns the field,
/// the bytes consumed (including the closing quote and a following comma)
/// and whether another field follows.
fn quoted(body: &str, start: usize) -> Result<(String, usize, bool), String> {
    let mut field = String::new();
    let mut i = 0;
    loop {
        let Some(q) = body[i..].find('"') else {
            return Err(parse_err(start + i, BAD_QUOTE));
        };
        field.push_str(&body[i..i + q]);
        i += q + 1;
        match body[i..].chars().next() {
            Some('"') => {
                field.push('"');
                i += 1;
            }
            Some(',') => return Ok((field, i + 1, true)),
            None => return Ok((field, i, false)),
            Some(_) => return Err(parse_err(start + i - 1, BAD_QUOTE)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fields;

    #[test]
    fn csv_records() {
        assert_eq!(
            fields("a,b=c,,d"),
            Ok(vec!["a".into(), "b=c".into(), "".into(), "d".into()])
        );
        assert_eq!(fields("\"a,b\",c"), Ok(vec!["a,b".into(), "c".into()]));
        assert_eq!(fields("\"x=\"\"y\"\"\""), Ok(vec!["x=\"y\"".into()]));
        assert_eq!(fields("a,"), Ok(vec!["a".into(), "".into()]));
        assert_eq!(fields(""), Err("EOF".into()));
        assert_eq!(
            fields("a\"b"),
            Err("parse error on line 1, column 2: bare \" in non-quoted-field".into())
        );
        assert!(fields("\"ab").is_err());
        assert!(fields("\"a\"b").is_err());
    }
}
