//! Amazon SES notifications sent by e-mail through Amazon SNS: a plain text
//! message from `no-reply@sns.amazonaws.com` (with `x-amz-sns-message-id`)
//! whose body is one JSON object, `notificationType` (or, for SES event
//! publishing, `eventType`) `Bounce`, `Complaint`, `Delivery` or
//! `DeliveryDelay`, followed by SNS's unsubscribe footer.
//!
//! The JSON is read with serde_json, which stops at 128 levels of nesting;
//! the text it reads is bounded by [`super::mime::MAX_TEXT_BYTES`].

use serde_json::Value;

use super::dsn::untyped;
use super::mime::Parts;
use super::{Action, Bounce, Reason};

/// Whether the message is an SNS notification carrying an SES event.
fn is_sns(parts: &Parts) -> bool {
    let sender = parts.headers.get("x-amz-sns-message-id").is_some()
        || parts.from == "no-reply@sns.amazonaws.com";
    sender && (parts.text.contains("\"notificationType\"") || parts.text.contains("\"eventType\""))
}

/// The first JSON object in the text (the footer after it is ignored).
fn object(text: &str) -> Option<Value> {
    let at = text.find('{')?;
    let mut values = serde_json::Deserializer::from_str(&text[at..]).into_iter::<Value>();
    values.next()?.ok().filter(Value::is_object)
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// The entries of the list `key` of `v`, at most [`super::MAX_RECIPIENTS`];
/// `None` when there is no such list.
fn listed<'a>(v: &'a Value, key: &str) -> Option<impl Iterator<Item = &'a Value>> {
    Some(v.get(key)?.as_array()?.iter().take(super::MAX_RECIPIENTS))
}

/// A recipient entry's diagnostic, without its type ("smtp; 550 …" → "550 …").
fn diagnostic_of(r: &Value) -> Option<String> {
    str_of(r, "diagnosticCode").map(|d| untyped(d).to_owned())
}

/// The recipients an SES notification reports on, or `None` when the
/// message is not one (or is an event that is not about delivery: `Send`,
/// `Open`, `Click`, …).
pub fn scan(parts: &Parts) -> Option<Vec<Bounce>> {
    if !is_sns(parts) {
        return None;
    }
    let v = object(&parts.text)?;
    let kind = str_of(&v, "notificationType").or_else(|| str_of(&v, "eventType"))?;
    let mut out = Vec::new();
    match kind {
        "Bounce" => {
            let b = v.get("bounce")?;
            let transient = str_of(b, "bounceType") == Some("Transient");
            let subtype = str_of(b, "bounceSubType").unwrap_or_default();
            let remote = str_of(b, "remoteMtaIp").map(str::to_owned);
            for r in listed(b, "bouncedRecipients")? {
                let Some(address) = str_of(r, "emailAddress") else {
                    continue;
                };
                let action = str_of(r, "action")
                    .and_then(Action::parse)
                    .unwrap_or(Action::Failed);
                let status = str_of(r, "status").and_then(super::Status::parse);
                if let Some(mut bounce) = super::finish(
                    address,
                    Some(action),
                    status,
                    None,
                    remote.clone(),
                    diagnostic_of(r),
                    None,
                ) {
                    // Without the server's words, SES's own sub-type says it.
                    if matches!(bounce.reason, Reason::OnHold | Reason::Undefined) {
                        if let Some(r) = by_subtype(subtype, transient) {
                            bounce.reason = r;
                        }
                    }
                    out.push(bounce);
                }
            }
        }
        "DeliveryDelay" => {
            let d = v.get("deliveryDelay")?;
            for r in listed(d, "delayedRecipients")? {
                let Some(address) = str_of(r, "emailAddress") else {
                    continue;
                };
                let status = str_of(r, "status").and_then(super::Status::parse);
                out.extend(super::finish(
                    address,
                    Some(Action::Delayed),
                    status,
                    None,
                    None,
                    diagnostic_of(r),
                    None,
                ));
            }
        }
        "Delivery" => {
            let d = v.get("delivery")?;
            let response = str_of(d, "smtpResponse").map(str::to_owned);
            let remote = str_of(d, "remoteMtaIp").map(str::to_owned);
            for r in listed(d, "recipients")? {
                let Some(address) = r.as_str() else { continue };
                out.extend(super::finish(
                    address,
                    Some(Action::Delivered),
                    None,
                    None,
                    remote.clone(),
                    response.clone(),
                    None,
                ));
            }
        }
        "Complaint" => {
            let c = v.get("complaint")?;
            let kind = str_of(c, "complaintFeedbackType").unwrap_or("abuse");
            for r in listed(c, "complainedRecipients")? {
                let Some(recipient) =
                    str_of(r, "emailAddress").and_then(super::smtp::clean_address)
                else {
                    continue;
                };
                let Some((_, domain)) = recipient.rsplit_once('@') else {
                    continue;
                };
                out.push(Bounce {
                    recipient_domain: domain.to_ascii_lowercase(),
                    recipient,
                    action: None,
                    status: None,
                    reply_code: None,
                    reason: Reason::Feedback,
                    remote_mta: None,
                    diagnostic: Some(super::one_line(&format!("feedback-type: {kind}"))),
                });
            }
        }
        _ => return None,
    }
    (!out.is_empty()).then_some(out)
}

/// SES's bounce sub-types that name a reason (its documented list).
fn by_subtype(subtype: &str, transient: bool) -> Option<Reason> {
    Some(match (subtype, transient) {
        ("NoEmail", false) => Reason::UserUnknown,
        ("MailboxFull", _) => Reason::MailboxFull,
        ("MessageTooLarge", _) => Reason::MesgTooBig,
        ("ContentRejected" | "AttachmentRejected", _) => Reason::PolicyViolation,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_object_is_read_and_the_footer_ignored() {
        let v = object("x {\"a\": {\"b\": 1}}\n--\nIf you wish to stop { }").unwrap();
        assert_eq!(v["a"]["b"], 1);
        assert!(object("no json here").is_none());
        assert!(object("{\"unterminated\": ").is_none());
        // Deep nesting is refused by serde_json's depth limit, not a crash.
        let deep = "[".repeat(100_000);
        assert!(object(&format!("{{\"a\":{deep}")).is_none());
    }

    #[test]
    fn diagnostic_type_is_stripped() {
        let entry = |d: &str| serde_json::json!({ "diagnosticCode": d });
        assert_eq!(
            diagnostic_of(&entry("smtp; 550 5.1.1 no")).as_deref(),
            Some("550 5.1.1 no")
        );
        assert_eq!(
            diagnostic_of(&entry("550 a; b")).as_deref(),
            Some("550 a; b")
        );
        assert_eq!(diagnostic_of(&serde_json::json!({})), None);
    }
}
