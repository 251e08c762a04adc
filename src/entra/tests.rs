use super::*;
use chrono::TimeDelta;

fn credential(key_id: &str, ends_in_days: i64) -> AppCredential {
    AppCredential {
        app_name: "payments-api".into(),
        app_id: "11111111-2222-3333-4444-555555555555".into(),
        holder_id: "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee".into(),
        holder: Holder::Application,
        kind: CredentialKind::Secret,
        key_id: key_id.to_owned(),
        name: format!("secret {key_id}"),
        ends: Some(Utc::now() + TimeDelta::days(ends_in_days)),
    }
}

fn reminder(step: i64) -> Reminder {
    Reminder {
        step,
        kept_from: Utc::now(),
        next: None,
        auto_renews: None,
    }
}

#[test]
fn a_notice_lists_every_credential_soonest_first_and_is_keyed_by_them_all() {
    let (a, b) = (credential("a", 20), credential("b", 10));
    let due = [(&a, Vec::new()), (&b, vec!["a note".to_owned()])];
    let notice = notice(&due, reminder(30), Utc::now()).expect("a notice");
    let application = notice.application.as_ref().expect("its application");
    let keys: Vec<&str> = application
        .credentials
        .iter()
        .map(|c| c.key_id.as_str())
        .collect();
    assert_eq!(keys, ["b", "a"]);
    assert_eq!(application.credentials[0].notes, ["a note"]);
    assert_eq!(notice.object.as_deref(), Some("secret b and 1 more"));
    assert_eq!(notice.expires, b.ends);
    // The same credentials in another order make the same notice; another set, another one.
    let again = notice_of(&[&b, &a]);
    assert_eq!(notice.key, again.key);
    assert_ne!(notice.key, notice_of(&[&a]).key);
    assert_ne!(notice.key, notice_of(&[&a, &b]).key_at(7));
}

#[test]
fn a_moved_end_date_is_a_new_step_key() {
    let mut moved = credential("a", 20);
    let before = moved.step_key(30);
    moved.ends = moved.ends.map(|t| t + TimeDelta::days(1));
    assert_ne!(before, moved.step_key(30));
    assert_eq!(moved.step_key(30), moved.clone().step_key(30));
}

#[test]
fn newer_is_a_later_credential_of_the_same_kind_and_holder() {
    let old = credential("old", 10);
    let new = credential("new", 400);
    let mut certificate = credential("cert", 800);
    certificate.kind = CredentialKind::Certificate;
    let mut elsewhere = credential("elsewhere", 900);
    elsewhere.holder_id = "ffffffff-0000-0000-0000-000000000000".into();
    let all = [old.clone(), new.clone(), certificate, elsewhere];
    assert_eq!(old.newer(&all).map(|c| c.key_id.as_str()), Some("new"));
    assert_eq!(new.newer(&all), None);
    assert!(newer_note(&old, &new).starts_with("A newer client secret exists (it ends on "));
}

fn notice_of(credentials: &[&AppCredential]) -> KeyedNotice {
    let due: Vec<_> = credentials.iter().map(|c| (*c, Vec::new())).collect();
    KeyedNotice {
        key: notice(&due, reminder(30), Utc::now())
            .expect("a notice")
            .key,
        due: credentials.iter().map(|c| (*c).clone()).collect(),
    }
}

struct KeyedNotice {
    key: EventKey,
    due: Vec<AppCredential>,
}

impl KeyedNotice {
    fn key_at(&self, step: i64) -> EventKey {
        let due: Vec<_> = self.due.iter().map(|c| (c, Vec::new())).collect();
        notice(&due, reminder(step), Utc::now())
            .expect("a notice")
            .key
    }
}
