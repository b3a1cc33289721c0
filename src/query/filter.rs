//! Parsing filter parameters (`attr=v1,v2`, `attr.gt=v`, `attr>=v`, ...) into a typed tree.

use crate::error::Error;

/// Bounds of a query, so that no request makes the parser, the SQL, the regex engines or the
/// `Link` header of a page grow beyond what a real query needs. Each is answered 400 naming it.
pub const MAX_QUERY_BYTES: usize = 8 * 1024;
pub const MAX_CONDITIONS: usize = 32;
pub const MAX_VALUES_PER_CONDITION: usize = 100;
pub const MAX_REGEX_CHARS: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
    Regex,
}

impl Op {
    fn from_suffix(s: &str) -> Option<Op> {
        Some(match s {
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            "gt" => Op::Gt,
            "gte" => Op::Gte,
            "lt" => Op::Lt,
            "lte" => Op::Lte,
            "regex" => Op::Regex,
            _ => return None,
        })
    }
}

/// One filter parameter: the attribute path, the operator and the values (OR-ed).
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub path: Vec<String>,
    pub op: Op,
    pub values: Vec<String>,
}

/// All filter parameters of a request; they combine with AND.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    pub conditions: Vec<Condition>,
}

fn decode(s: &str) -> Result<String, Error> {
    let plus_as_space = s.replace('+', " ");
    percent_decode(&plus_as_space)
        .filter(|decoded| !decoded.contains('\0'))
        .ok_or_else(|| {
            Error::BadRequest(format!(
                "query: {s:?} is not valid percent-encoded UTF-8 without NUL characters"
            ))
        })
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Splits one raw `key<op>value` pair at its operator: `a=v`, `a>=v`, `a<=v`, `a!=v`, `a>v`,
/// `a<v`, with the operator symbols raw or percent-encoded (hyper refuses a raw `<`).
fn split_pair(raw: &str) -> Result<(String, Option<Op>, String), Error> {
    let symbol = |key: &str| key.find(['>', '<']);
    match raw.find('=') {
        Some(i) => {
            let key = decode(&raw[..i])?;
            let value = decode(&raw[i + 1..])?;
            for (suffix, op) in [('>', Op::Gte), ('<', Op::Lte), ('!', Op::Ne)] {
                if let Some(name) = key.strip_suffix(suffix) {
                    return Ok((name.to_string(), Some(op), value));
                }
            }
            match symbol(&key) {
                Some(j) => {
                    let op = if key.as_bytes()[j] == b'>' {
                        Op::Gt
                    } else {
                        Op::Lt
                    };
                    Ok((
                        key[..j].to_string(),
                        Some(op),
                        format!("{}={value}", &key[j + 1..]),
                    ))
                }
                None => Ok((key, None, value)),
            }
        }
        None => {
            let pair = decode(raw)?;
            match symbol(&pair) {
                Some(j) => {
                    let op = if pair.as_bytes()[j] == b'>' {
                        Op::Gt
                    } else {
                        Op::Lt
                    };
                    Ok((pair[..j].to_string(), Some(op), pair[j + 1..].to_string()))
                }
                None => Ok((pair, None, String::new())),
            }
        }
    }
}

/// All `(name, operator, value)` triples of a raw query string, decoded.
pub fn pairs(raw_query: &str) -> Result<Vec<(String, Option<Op>, String)>, Error> {
    if raw_query.len() > MAX_QUERY_BYTES {
        return Err(Error::BadRequest(format!(
            "the query string is {} bytes long; at most {MAX_QUERY_BYTES} are accepted",
            raw_query.len()
        )));
    }
    raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(split_pair)
        .collect()
}

/// The filter of a list request: every parameter not in `reserved`.
pub fn parse(raw_query: &str, reserved: &[&str]) -> Result<Filter, Error> {
    let mut conditions = Vec::new();
    for (key, symbol_op, value) in pairs(raw_query)? {
        if symbol_op.is_none() && reserved.contains(&key.as_str()) {
            continue;
        }
        let mut path: Vec<String> = key.split('.').map(str::to_string).collect();
        let suffix_op = match path.last().and_then(|last| Op::from_suffix(last)) {
            Some(op) if path.len() > 1 => {
                path.pop();
                Some(op)
            }
            _ => None,
        };
        let op = match (symbol_op, suffix_op) {
            (Some(_), Some(_)) => {
                return Err(Error::BadRequest(format!(
                    "filter {key}: give the operator either as a suffix or as a symbol, not both"
                )))
            }
            (a, b) => a.or(b).unwrap_or(Op::Eq),
        };
        if path.iter().any(String::is_empty) {
            return Err(Error::BadRequest(format!(
                "filter {key:?}: empty attribute name"
            )));
        }
        let values: Vec<String> = match op {
            // A regex may itself contain commas.
            Op::Regex => vec![value],
            _ => value.split(',').map(str::to_string).collect(),
        };
        if op == Op::Regex && values[0].chars().count() > MAX_REGEX_CHARS {
            return Err(Error::BadRequest(format!(
                "filter {key}: a regex may be at most {MAX_REGEX_CHARS} characters long"
            )));
        }
        if values.len() > MAX_VALUES_PER_CONDITION {
            return Err(Error::BadRequest(format!(
                "filter {key}: at most {MAX_VALUES_PER_CONDITION} values per condition, not {}",
                values.len()
            )));
        }
        if conditions.len() == MAX_CONDITIONS {
            return Err(Error::BadRequest(format!(
                "at most {MAX_CONDITIONS} filter conditions per query"
            )));
        }
        conditions.push(Condition { path, op, values });
    }
    Ok(Filter { conditions })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(q: &str) -> Condition {
        parse(q, &["fields"]).unwrap().conditions.remove(0)
    }

    #[test]
    fn operators_in_every_spelling() {
        assert_eq!(one("status=rated,billed").values, vec!["rated", "billed"]);
        assert_eq!(one("usageDate.gt=2024").op, Op::Gt);
        assert_eq!(one("usageDate>=2024").op, Op::Gte);
        assert_eq!(one("usageDate<2024").op, Op::Lt);
        assert_eq!(one("status!=billed").op, Op::Ne);
        let c = one("relatedParty.id=42");
        assert_eq!(c.path, vec!["relatedParty", "id"]);
        assert_eq!(c.op, Op::Eq);
        assert_eq!(one("description=a%3Eb+c").values, vec!["a>b c"]);
        assert_eq!(one("usageDate%3C2024").op, Op::Lt);
        assert_eq!(one("usageDate%3C=2024").op, Op::Lte);
    }

    #[test]
    fn reserved_parameters_are_not_filters() {
        assert!(parse("fields=id", &["fields"])
            .unwrap()
            .conditions
            .is_empty());
    }
}
