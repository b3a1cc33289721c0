//! The two kinds of TMF635 resource and what the rest of the server needs to know about them.

/// A new id for anything the server creates (resources, events, deliveries): a UUIDv7, so ids
/// made one after another sort one after another and the B-tree indexes on them grow at their
/// end instead of touching a random page per insert. Clients treat ids as opaque strings.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    Usage,
    UsageSpecification,
}

impl ResourceKind {
    /// The name in paths, event payloads and error messages (`usage`, `usageSpecification`).
    pub fn name(self) -> &'static str {
        match self {
            ResourceKind::Usage => "usage",
            ResourceKind::UsageSpecification => "usageSpecification",
        }
    }

    /// The schema a stored resource conforms to in `api/`.
    pub fn schema(self) -> &'static str {
        match self {
            ResourceKind::Usage => "Usage",
            ResourceKind::UsageSpecification => "UsageSpecification",
        }
    }

    /// The attribute whose change is a state change (its own event type), if the kind has one.
    pub fn state_attribute(self) -> Option<&'static str> {
        match self {
            ResourceKind::Usage => Some("status"),
            ResourceKind::UsageSpecification => None,
        }
    }
}

/// The usage lifecycle the optional check enforces (`TMF635_ENFORCE_USAGE_LIFECYCLE`): a usage
/// is received, may be guided, is rated (and re-rated) and finally billed; rejected and
/// recycled usages can be taken up again. Nothing leaves `billed`. Staying put is always allowed.
pub fn usage_transition_allowed(from: &str, to: &str) -> bool {
    from == to
        || matches!(
            (from, to),
            ("received", "guided" | "rated" | "rejected" | "recycled")
                | ("guided", "rated" | "rejected" | "recycled")
                | ("rated", "rerated" | "billed" | "rejected" | "recycled")
                | ("rerated", "rerated" | "billed" | "rejected" | "recycled")
                | ("rejected", "recycled")
                | ("recycled", "received" | "guided" | "rated" | "rejected")
        )
}
