//! Decoding of the generated constrained-string types (`maxLength`,
//! `minLength`): evcontract replaces typify's decode-then-copy with a visitor
//! that checks the decoder's text and copies it once. Same values, same
//! error texts.

use chat_contract::types::{SendMessage, SendMessageContent};

#[test]
fn valid_strings_decode_from_text_and_from_values() {
    let plain: SendMessageContent = serde_json::from_str(r#""hello""#).expect("plain");
    assert_eq!(plain.as_str(), "hello");
    // Escapes go through serde_json's scratch buffer rather than the input.
    let escaped: SendMessageContent = serde_json::from_str(r#""a\nb\u00e9""#).expect("escaped");
    assert_eq!(escaped.as_str(), "a\nbé");
    // An owned string (from a `Value`) takes the same checks.
    let owned: SendMessageContent =
        serde_json::from_value(serde_json::json!("from a value")).expect("owned");
    assert_eq!(owned.as_str(), "from a value");
    // 2,000 characters of two bytes each: the bound is in characters.
    let long = "é".repeat(2000);
    let at_bound: SendMessageContent =
        serde_json::from_str(&format!("\"{long}\"")).expect("2,000 characters");
    assert_eq!(at_bound.chars().count(), 2000);
}

#[test]
fn invalid_strings_keep_their_error_texts() {
    // In an event's payload, where the server and the clients decode them.
    let err = |text: &str| {
        serde_json::from_str::<SendMessage>(text)
            .expect_err(text)
            .to_string()
    };
    assert_eq!(
        err(r#"{"content":5,"threadId":"t"}"#),
        "invalid type: integer `5`, expected a string at line 1 column 12"
    );
    assert_eq!(
        err(r#"{"content":"","threadId":"t"}"#),
        "shorter than 1 characters at line 1 column 13"
    );
    let too_long = format!(r#"{{"content":"{}","threadId":"t"}}"#, "x".repeat(2001));
    assert_eq!(
        err(&too_long),
        "longer than 2000 characters at line 1 column 2014"
    );
    assert_eq!(
        serde_json::from_value::<SendMessage>(serde_json::json!({"content": "", "threadId": "t"}))
            .expect_err("empty")
            .to_string(),
        "shorter than 1 characters"
    );
}
