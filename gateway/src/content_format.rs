//! CoAP Content-Format numbers (RFC 7252 §12.3, the IANA registry) and the MQTT 5 Content
//! Type strings they stand for. Unregistered numbers and types are not carried over.

const TABLE: &[(u16, &str)] = &[
    (0, "text/plain;charset=utf-8"),
    (40, "application/link-format"),
    (41, "application/xml"),
    (42, "application/octet-stream"),
    (47, "application/exi"),
    (50, "application/json"),
    (51, "application/json-patch+json"),
    (52, "application/merge-patch+json"),
    (60, "application/cbor"),
    (61, "application/cwt"),
    (110, "application/senml+json"),
    (111, "application/sensml+json"),
    (112, "application/senml+cbor"),
    (113, "application/sensml+cbor"),
    (310, "application/senml+xml"),
    (311, "application/sensml+xml"),
    (11050, "application/json-seq"),
];

/// The MQTT Content Type for a CoAP Content-Format number.
pub fn to_content_type(format: u16) -> Option<&'static str> {
    TABLE.iter().find(|(n, _)| *n == format).map(|(_, t)| *t)
}

/// The CoAP Content-Format number for an MQTT Content Type. Matching ignores case and
/// spaces; a bare `text/plain` counts as the UTF-8 one, the only plain text CoAP registers.
pub fn to_content_format(content_type: &str) -> Option<u16> {
    let normal: String = content_type
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase();
    if normal == "text/plain" {
        return Some(0);
    }
    TABLE.iter().find(|(_, t)| *t == normal).map(|(n, _)| *n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for (n, t) in TABLE {
            assert_eq!(to_content_type(*n), Some(*t));
            assert_eq!(to_content_format(t), Some(*n));
        }
    }

    #[test]
    fn lenient_matching_and_unknowns() {
        assert_eq!(to_content_format("Application/JSON"), Some(50));
        assert_eq!(to_content_format("text/plain; charset=utf-8"), Some(0));
        assert_eq!(to_content_format("text/plain"), Some(0));
        assert_eq!(to_content_format("image/png"), None);
        assert_eq!(to_content_type(9999), None);
    }
}
