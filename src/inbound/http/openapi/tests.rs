//! The document against the routes: every route described, nothing described that isn't a
//! route, and each operation complete (summary, a success answer, error answers with the error
//! body, error codes as the README lists them).

use std::collections::BTreeSet;

use serde_json::Value;

use super::document_json;
use crate::inbound::http::errors::ErrorCode;
use crate::inbound::http::metrics::ROUTES;

fn document() -> Value {
    serde_json::from_str(document_json()).expect("the document is JSON")
}

/// `path` with every parameter written `{id}`, as `ROUTES` writes them.
fn as_template(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if segment.starts_with('{') && segment.ends_with('}') {
                "{id}"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Every operation of the document: (method, path as written, operation).
fn operations(document: &Value) -> Vec<(String, String, Value)> {
    let mut found = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("a path item") {
            if ["get", "put", "post", "delete", "patch", "head", "options"]
                .contains(&method.as_str())
            {
                found.push((method.to_uppercase(), path.clone(), operation.clone()));
            }
        }
    }
    found
}

#[test]
fn the_document_is_openapi_3_1() {
    let document = document();
    assert!(
        document["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        document["openapi"]
    );
}

#[test]
fn every_route_is_described_and_every_description_is_a_route() {
    let described: BTreeSet<(String, String)> = operations(&document())
        .into_iter()
        .map(|(method, path, _)| (method, as_template(&path)))
        .collect();
    let routes: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(method, path)| ((*method).to_owned(), (*path).to_owned()))
        .collect();
    let undescribed: Vec<_> = routes.difference(&described).collect();
    let unrouted: Vec<_> = described.difference(&routes).collect();
    assert!(
        undescribed.is_empty(),
        "routes without a description (annotate the handler with #[utoipa::path] and list it \
         in openapi::ApiDoc): {undescribed:?}"
    );
    assert!(
        unrouted.is_empty(),
        "descriptions without a route (add the route to metrics::ROUTES and the router): \
         {unrouted:?}"
    );
}

#[test]
fn every_operation_has_a_summary_a_success_and_its_errors_in_the_error_body() {
    let document = document();
    for (method, path, operation) in operations(&document) {
        let name = format!("{method} {path}");
        assert!(
            operation["summary"].as_str().is_some_and(|s| !s.is_empty()),
            "{name} has no summary"
        );
        assert!(operation["operationId"].is_string(), "{name}");
        let responses = operation["responses"].as_object().expect("responses");
        assert!(
            responses.keys().any(|status| status.starts_with('2')),
            "{name} documents no success"
        );
        for (status, response) in responses {
            assert!(
                response["description"]
                    .as_str()
                    .is_some_and(|d| !d.is_empty()),
                "{name} {status} has no description"
            );
            if status.starts_with('4') || status.starts_with('5') {
                assert_eq!(
                    response["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorBody",
                    "{name} {status}"
                );
            }
        }
        // A path parameter of the template is a documented parameter, and the other way round.
        let in_path: BTreeSet<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        let documented: BTreeSet<&str> = operation["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "path")
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert_eq!(in_path, documented, "{name}");
        // Every body is read as JSON: 400, 413, 415 and 422 are possible answers.
        if operation.get("requestBody").is_some() {
            for status in ["400", "413", "415", "422"] {
                assert!(responses.contains_key(status), "{name} lacks {status}");
            }
        }
        if path.contains('{') {
            assert!(responses.contains_key("404"), "{name} lacks 404");
        }
    }
}

#[test]
fn error_codes_are_an_enum_of_the_readme_codes() {
    let document = document();
    let listed: BTreeSet<&str> = document["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .expect("ErrorCode is an enum")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    // The README's table of errors: rows like "| 409 | `step_not_actionable` | when |".
    let readme = include_str!("../../../../README.md");
    let documented: BTreeSet<&str> = readme
        .lines()
        .filter_map(|line| {
            let mut cells = line.split('|').map(str::trim).skip(1);
            let status = cells.next()?;
            let code = cells.next()?.strip_prefix('`')?.strip_suffix('`')?;
            (status.len() == 3 && status.bytes().all(|b| b.is_ascii_digit())).then_some(code)
        })
        .collect();
    assert_eq!(listed, documented);
    assert_eq!(
        serde_json::to_value(ErrorCode::StepNotActionable).unwrap(),
        "step_not_actionable"
    );
}

#[test]
fn request_bodies_refuse_unknown_fields_and_state_their_rules() {
    let document = document();
    let schemas = &document["components"]["schemas"];
    for name in [
        "TriggerRequest",
        "ApproveRequest",
        "RejectRequest",
        "CancelRequest",
        "NewTemplateRequest",
        "TemplateUpdateRequest",
        "StepRequest",
        "UserRequest",
    ] {
        assert_eq!(
            schemas[name]["additionalProperties"],
            Value::Bool(false),
            "{name}: {}",
            schemas[name]
        );
    }
    assert_eq!(schemas["PositiveId"]["minimum"], 1);
    assert_eq!(schemas["Comment"]["maxLength"], 2000);
    assert_eq!(schemas["EventName"]["maxLength"], 128);
    assert_eq!(
        schemas["RejectRequest"]["required"],
        serde_json::json!(["acted_by_user_id", "comment"])
    );
}

#[test]
fn links_lead_to_operations_and_their_parameters() {
    let document = document();
    let operations = operations(&document);
    let by_id = |id: &str| {
        operations
            .iter()
            .find(|(_, _, operation)| operation["operationId"] == id)
            .map(|(_, _, operation)| operation.clone())
    };
    let mut links = 0;
    for (method, path, operation) in &operations {
        for (status, response) in operation["responses"].as_object().unwrap() {
            for (name, link) in response["links"].as_object().into_iter().flatten() {
                links += 1;
                let target = link["operationId"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{link}"));
                let target = by_id(target)
                    .unwrap_or_else(|| panic!("{method} {path} {status} {name}: no {target}"));
                for parameter in link["parameters"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|p| p.0)
                {
                    assert!(
                        target["parameters"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .any(|p| p["name"] == parameter.as_str()),
                        "{method} {path} {status} {name}: {parameter}"
                    );
                }
                if link.get("requestBody").is_some() {
                    assert!(target.get("requestBody").is_some(), "{name}");
                }
            }
        }
    }
    assert!(links >= 20, "{links}");
    // The stateful walk reaches both decisions from a new instance.
    let trigger = by_id("trigger").unwrap();
    let trigger_links = &trigger["responses"]["201"]["links"];
    assert_eq!(
        trigger_links["ApproveFirstStep"]["operationId"],
        "approve_step"
    );
    assert_eq!(
        trigger_links["RejectFirstStep"]["operationId"],
        "reject_step"
    );
}

/// Every `$ref` in `value`.
fn references(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(target)) = map.get("$ref") {
                found.push(target.clone());
            }
            map.values().for_each(|v| references(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| references(v, found)),
        _ => {}
    }
}

#[test]
fn every_reference_resolves() {
    let document = document();
    let mut found = Vec::new();
    references(&document, &mut found);
    assert!(found.len() > 50, "{}", found.len());
    for target in found {
        let pointer = target.strip_prefix('#').expect("a local reference");
        assert!(
            document.pointer(pointer).is_some(),
            "{target} is not defined"
        );
    }
}

#[test]
fn a_template_update_must_set_a_field_and_an_approver_is_closed() {
    let document = document();
    let schemas = &document["components"]["schemas"];
    let update = &schemas["TemplateUpdateRequest"];
    assert!(update.get("maxProperties").is_none(), "{update}");
    assert_eq!(update["anyOf"].as_array().unwrap().len(), 4, "{update}");
    assert_eq!(
        update["anyOf"][0]["required"],
        serde_json::json!(["forbid_self_approval"])
    );
    for variant in schemas["Approver"]["oneOf"].as_array().unwrap() {
        assert_eq!(
            variant["additionalProperties"],
            Value::Bool(false),
            "{variant}"
        );
    }
}

#[test]
fn due_dates_are_described_on_steps_and_templates() {
    let document = document();
    let schemas = &document["components"]["schemas"];
    let request = &schemas["StepRequest"]["properties"];
    for (field, schema) in [
        ("due_in", "DueIn"),
        ("on_overdue", "OnOverdue"),
        ("escalate_to", "EscalateTo"),
    ] {
        let text = request[field].to_string();
        assert!(
            text.contains(&format!("#/components/schemas/{schema}")),
            "{field}: {text}"
        );
    }
    assert_eq!(
        schemas["OnOverdue"]["enum"],
        serde_json::json!(["notify", "escalate", "reject"])
    );
    let pattern = schemas["DueIn"]["pattern"].as_str().unwrap();
    assert!(pattern.starts_with("^P"), "{pattern}");
    assert_eq!(
        schemas["Step"]["properties"]["due_at"]["format"], "date-time",
        "{}",
        schemas["Step"]
    );
    for field in ["due_in", "on_overdue", "escalate_to"] {
        assert!(
            schemas["TemplateStep"]["properties"].get(field).is_some(),
            "{field}: {}",
            schemas["TemplateStep"]
        );
    }
}
