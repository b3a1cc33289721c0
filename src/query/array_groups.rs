//! How the conditions of a filter combine across arrays, for lists (compiled to SQL) and for
//! subscription queries (matched against an event in memory) alike: conditions whose paths
//! go through the same array must all hold of one element of it
//! (`relatedParty.id=42&relatedParty.role=customer` is one party with both), and every other
//! condition holds on its own.

/// A condition with its attribute path and where that path crosses arrays.
pub trait ArrayPath {
    fn path(&self) -> &[String];
    /// Path indexes after which the value is an array.
    fn arrays(&self) -> &[usize];
}

/// One part of a group of conditions whose paths start at some depth.
pub enum Group<'c, C> {
    /// A condition whose path crosses no further array.
    Plain(&'c C),
    /// Conditions that must hold of one element of the array at `path[..=array_at]`; their
    /// paths continue below the element at `array_at + 1`.
    Element {
        array_at: usize,
        prefix: &'c [String],
        members: Vec<&'c C>,
    },
}

/// Splits `conditions`, whose paths are read from `depth` on, into plain conditions and one
/// group per array they go through next, in the order the conditions came.
pub fn group<'c, C: ArrayPath>(depth: usize, conditions: &[&'c C]) -> Vec<Group<'c, C>> {
    let next_array = |c: &C| c.arrays().iter().copied().find(|&a| a >= depth);
    let mut done = vec![false; conditions.len()];
    let mut groups = Vec::new();
    for (i, &c) in conditions.iter().enumerate() {
        if done[i] {
            continue;
        }
        done[i] = true;
        let Some(array_at) = next_array(c) else {
            groups.push(Group::Plain(c));
            continue;
        };
        let prefix = &c.path()[..=array_at];
        let mut members = vec![c];
        for (j, &other) in conditions.iter().enumerate().skip(i + 1) {
            if !done[j] && next_array(other) == Some(array_at) && other.path().starts_with(prefix) {
                done[j] = true;
                members.push(other);
            }
        }
        groups.push(Group::Element {
            array_at,
            prefix,
            members,
        });
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    struct C(Vec<String>, Vec<usize>);
    impl ArrayPath for C {
        fn path(&self) -> &[String] {
            &self.0
        }
        fn arrays(&self) -> &[usize] {
            &self.1
        }
    }

    fn c(path: &str, arrays: &[usize]) -> C {
        C(
            path.split('.').map(str::to_string).collect(),
            arrays.to_vec(),
        )
    }

    #[test]
    fn conditions_through_one_array_share_an_element() {
        let (id, role, kind, rate) = (
            c("relatedParty.id", &[0]),
            c("relatedParty.role", &[0]),
            c("usageType", &[]),
            c("ratedProductUsage.taxRate", &[0]),
        );
        let groups = group(0, &[&id, &kind, &role, &rate]);
        let shape: Vec<String> = groups
            .iter()
            .map(|g| match g {
                Group::Plain(c) => c.path().join("."),
                Group::Element {
                    prefix, members, ..
                } => {
                    format!("{}[{}]", prefix.join("."), members.len())
                }
            })
            .collect();
        assert_eq!(
            shape,
            ["relatedParty[2]", "usageType", "ratedProductUsage[1]"]
        );
    }
}
