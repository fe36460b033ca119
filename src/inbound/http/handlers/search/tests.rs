//! Unit tests of the search handler's query parsing and cursor (driving adapter, HTTP).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::*;
use crate::domain::model::EntityFilter;
use crate::inbound::http::cursor::fnv1a;

fn query(text: &str) -> Result<SearchQuery, String> {
    let pairs: Vec<(String, String)> = text
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect();
    SearchQuery::try_from(pairs).map_err(|e| e.message)
}

fn iid(n: i64) -> InstanceId {
    InstanceId::new(n).unwrap()
}

#[test]
fn no_parameter_is_every_instance_from_the_newest_with_the_default_limit() {
    assert_eq!(
        query(""),
        Ok(SearchQuery {
            filter: InstanceFilter::default(),
            limit: 50,
            after: None,
        })
    );
}

#[test]
fn every_parameter_is_typed() {
    let cursor = encode_cursor(iid(120));
    let typed = query(&format!(
        "entity_type=booking&entity_id=7&event=booking.cancellation_requested\
         &status=in_progress&initiated_by=3&limit=20&after={cursor}"
    ))
    .unwrap();
    assert_eq!(
        typed,
        SearchQuery {
            filter: InstanceFilter {
                entity: Some(EntityFilter {
                    entity_type: EntityType::new("booking").unwrap(),
                    entity_id: Some(EntityId::new(7).unwrap()),
                }),
                event: Some(EventName::new("booking.cancellation_requested").unwrap()),
                status: Some(InstanceStatus::InProgress),
                initiated_by: Some(UserId::new(3).unwrap()),
            },
            limit: 20,
            after: Some(iid(120)),
        }
    );
    // An entity type alone; the range of the limit is the service's to check; the last of
    // a repeated parameter wins.
    let typed = query("entity_type=unit&limit=0&status=approved&status=rejected").unwrap();
    assert_eq!(
        typed.filter.entity,
        Some(EntityFilter {
            entity_type: EntityType::new("unit").unwrap(),
            entity_id: None,
        })
    );
    assert_eq!(typed.filter.status, Some(InstanceStatus::Rejected));
    assert_eq!(typed.limit, 0);
}

#[test]
fn each_fault_has_the_contracts_message() {
    let names = "Field 'entity_type' must be 1 to 64 characters of a-z, 0-9, '_', '.' or '-', \
                 starting with a letter.";
    let cases = [
        ("entity_type=", names),
        ("entity_type=Booking", names),
        (
            "entity_type=booking&entity_id=0",
            "Field 'entity_id' must be a positive integer.",
        ),
        (
            "entity_type=booking&entity_id=x",
            "Field 'entity_id' must be a positive integer.",
        ),
        (
            "entity_type=booking&entity_id=1.5",
            "Field 'entity_id' must be a positive integer.",
        ),
        (
            "entity_id=7",
            "Field 'entity_id' can only be given together with entity_type.",
        ),
        (
            "event=Booking",
            "Field 'event' must be 1 to 128 characters of a-z, 0-9, '_', '.' or '-', \
             starting with a letter.",
        ),
        (
            "status=open",
            "Field 'status' must be one of pending, in_progress, approved, rejected, cancelled.",
        ),
        (
            "status=",
            "Field 'status' must be one of pending, in_progress, approved, rejected, cancelled.",
        ),
        (
            "initiated_by=-3",
            "Field 'initiated_by' must be a positive integer.",
        ),
        (
            "initiated_by=abc",
            "Field 'initiated_by' must be a positive integer.",
        ),
        (
            "limit=-1",
            "Field 'limit' must be an integer between 1 and 500.",
        ),
        (
            "limit=ten",
            "Field 'limit' must be an integer between 1 and 500.",
        ),
        (
            "page=2",
            "Field 'page' is not a known query parameter (expected: entity_type, entity_id, \
             event, status, initiated_by, limit, after).",
        ),
        // Faults are reported in the order the client wrote them, the cross-parameter rule
        // last.
        (
            "status=x&page=2",
            "Field 'status' must be one of pending, in_progress, approved, rejected, cancelled.",
        ),
        (
            "entity_id=7&limit=x",
            "Field 'limit' must be an integer between 1 and 500.",
        ),
    ];
    for (text, message) in cases {
        assert_eq!(query(text), Err(message.to_owned()), "{text:?}");
    }
}

#[test]
fn a_cursor_round_trips_and_says_nothing_readable() {
    for id in [1, 50, 9_007_199_254_740_993, i64::MAX] {
        let token = encode_cursor(iid(id));
        assert!(!token.contains(&id.to_string()), "{token}");
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "URL-safe without escaping: {token}"
        );
        assert_eq!(decode_cursor(&token), Ok(iid(id)));
    }
}

#[test]
fn a_cursor_the_api_did_not_write_is_refused_naming_after() {
    // Well-formed and correctly checked, but not what the encoder writes.
    let b64 = |body: &str| URL_SAFE_NO_PAD.encode(format!("{body}:{:08x}", fnv1a(body)));
    let good = encode_cursor(iid(120));
    let refused = [
        String::new(),
        "abc!".to_owned(),
        "120".to_owned(),
        format!("{good}="),
        format!("{good}A"),
        good[..good.len() - 1].to_owned(),
        // Right content, wrong check; no check at all.
        URL_SAFE_NO_PAD.encode("v1:120:00000000"),
        URL_SAFE_NO_PAD.encode("v1:120"),
        b64("v2:120"),
        b64("v1:"),
        b64("v1:0"),
        b64("v1:-5"),
        b64("v1:+5"),
        b64("v1:007"),
        b64("v1: 7"),
        b64("v1:7 "),
        b64("v1:abc"),
        b64("v1:9223372036854775808"),
        URL_SAFE_NO_PAD.encode([0xff, 0xfe, 0x00]),
    ];
    for token in refused {
        let error = decode_cursor(&token).unwrap_err();
        assert_eq!(error.status, StatusCode::UNPROCESSABLE_ENTITY, "{token:?}");
        assert_eq!(
            error.message,
            "Field 'after' is not a cursor this API returned; pass the 'next' of the \
             previous page unchanged.",
            "{token:?}"
        );
    }
    // Any one character changed, anywhere in the token.
    for position in 0..good.len() {
        for replacement in ['A', 'z', '-', '7'] {
            let mut changed: Vec<char> = good.chars().collect();
            if changed[position] == replacement {
                continue;
            }
            changed[position] = replacement;
            let changed: String = changed.into_iter().collect();
            assert!(decode_cursor(&changed).is_err(), "{changed} was accepted");
        }
    }
}
