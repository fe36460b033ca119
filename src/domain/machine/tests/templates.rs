//! Tests of the template rules (domain core): `validate_template_steps`, and the checks of a
//! new template and of a template change built on it.

use super::fixtures::{assert_validation, entity_type, event, template, template_step, user};
use crate::domain::machine::{
    validate_new_template, validate_template_steps, validate_template_update,
};
use crate::domain::model::{NewTemplate, TemplateUpdate};

/// `template()` as it is first created: no id, no version yet.
fn new_template() -> NewTemplate {
    NewTemplate {
        name: "Booking cancellation".to_owned(),
        event: event(),
        entity_type: entity_type(),
        is_active: true,
        forbid_self_approval: false,
        steps: template().steps,
    }
}

// ----- validate_template_steps -----

#[test]
fn validate_template_steps_accepts_a_numbered_list() {
    assert_eq!(validate_template_steps(&template().steps), Ok(()));
}

#[test]
fn validate_template_steps_refuses_an_empty_list() {
    assert_validation(validate_template_steps(&[]).unwrap_err(), "steps");
}

#[test]
fn validate_template_steps_refuses_gaps_and_wrong_starts() {
    let gap = [
        template_step(1, "A", user(1)),
        template_step(3, "B", user(2)),
    ];
    assert_validation(
        validate_template_steps(&gap).unwrap_err(),
        "steps[1].step_order",
    );

    let from_zero = [template_step(0, "A", user(1))];
    assert_validation(
        validate_template_steps(&from_zero).unwrap_err(),
        "steps[0].step_order",
    );

    let repeated = [
        template_step(1, "A", user(1)),
        template_step(1, "B", user(2)),
    ];
    assert_validation(
        validate_template_steps(&repeated).unwrap_err(),
        "steps[1].step_order",
    );
}

#[test]
fn validate_template_steps_refuses_blank_or_overlong_names() {
    let blank = [
        template_step(1, "A", user(1)),
        template_step(2, "  ", user(2)),
    ];
    assert_validation(
        validate_template_steps(&blank).unwrap_err(),
        "steps[1].name",
    );

    let empty = [template_step(1, "", user(1))];
    assert_validation(
        validate_template_steps(&empty).unwrap_err(),
        "steps[0].name",
    );

    let long = [template_step(1, &"n".repeat(201), user(1))];
    assert_validation(validate_template_steps(&long).unwrap_err(), "steps[0].name");

    let longest = [template_step(1, &"n".repeat(200), user(1))];
    assert_eq!(validate_template_steps(&longest), Ok(()));
}

// ----- validate_new_template -----

#[test]
fn validate_new_template_accepts_a_named_template_with_numbered_steps() {
    assert_eq!(validate_new_template(&new_template()), Ok(()));

    // Whether it may be active is the store's call (one active template per event).
    let inactive = NewTemplate {
        is_active: false,
        ..new_template()
    };
    assert_eq!(validate_new_template(&inactive), Ok(()));

    let longest_name = NewTemplate {
        name: "n".repeat(200),
        ..new_template()
    };
    assert_eq!(validate_new_template(&longest_name), Ok(()));
}

#[test]
fn validate_new_template_refuses_a_blank_or_overlong_name() {
    for name in ["", "   ", "\t\n"] {
        let blank = NewTemplate {
            name: name.to_owned(),
            ..new_template()
        };
        assert_validation(validate_new_template(&blank).unwrap_err(), "name");
    }

    let long = NewTemplate {
        name: "n".repeat(201),
        ..new_template()
    };
    assert_validation(validate_new_template(&long).unwrap_err(), "name");
}

#[test]
fn validate_new_template_applies_the_step_rules() {
    let no_steps = NewTemplate {
        steps: Vec::new(),
        ..new_template()
    };
    assert_validation(validate_new_template(&no_steps).unwrap_err(), "steps");

    let gap = NewTemplate {
        steps: vec![
            template_step(1, "A", user(1)),
            template_step(3, "B", user(2)),
        ],
        ..new_template()
    };
    assert_validation(
        validate_new_template(&gap).unwrap_err(),
        "steps[1].step_order",
    );

    let blank_step = NewTemplate {
        steps: vec![template_step(1, " ", user(1))],
        ..new_template()
    };
    assert_validation(
        validate_new_template(&blank_step).unwrap_err(),
        "steps[0].name",
    );
}

#[test]
fn validate_new_template_reports_the_name_before_the_steps() {
    let both_bad = NewTemplate {
        name: String::new(),
        steps: Vec::new(),
        ..new_template()
    };

    assert_validation(validate_new_template(&both_bad).unwrap_err(), "name");
}

// ----- validate_template_update -----

#[test]
fn validate_template_update_checks_only_what_it_changes() {
    let nothing = TemplateUpdate {
        name: None,
        is_active: Some(false),
        forbid_self_approval: None,
        steps: None,
    };
    assert_eq!(validate_template_update(&nothing), Ok(()));

    let blank_name = TemplateUpdate {
        name: Some("  ".to_owned()),
        ..nothing.clone()
    };
    assert_validation(validate_template_update(&blank_name).unwrap_err(), "name");

    let no_steps = TemplateUpdate {
        steps: Some(Vec::new()),
        ..nothing.clone()
    };
    assert_validation(validate_template_update(&no_steps).unwrap_err(), "steps");

    let good = TemplateUpdate {
        name: Some("Renamed".to_owned()),
        is_active: None,
        forbid_self_approval: Some(true),
        steps: Some(template().steps),
    };
    assert_eq!(validate_template_update(&good), Ok(()));
}
