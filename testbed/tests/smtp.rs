//! testbed::Smtp is a real SMTP server: lettre (the sidecar's mailer) delivers
//! to it and the stored message is the one sent.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use numikube_testbed::Smtp;

#[tokio::test]
async fn lettre_delivers_mail_that_the_server_stores() {
    let smtp = Smtp::start().expect("start aiosmtpd");
    assert!(smtp.messages().is_empty());
    let mailer = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.host()).port(smtp.port).build();
    for n in 1..=2 {
        let mail = Message::builder()
            .from("Staging <staging@example.com>".parse().unwrap())
            .to("david@example.com".parse().unwrap())
            .subject(format!("Staging database cosmos-lab_{n} is ready"))
            .header(ContentType::TEXT_PLAIN)
            .body(format!("Open https://staging.example.com/web/database/selector ({n})"))
            .unwrap();
        mailer.send(mail).await.expect("SMTP delivery");
    }
    let mails = smtp.wait_for(2, Duration::from_secs(10)).unwrap();
    assert_eq!(mails.len(), 2);
    assert!(mails[0].contains("Subject: Staging database cosmos-lab_1 is ready"), "{}", mails[0]);
    assert!(mails[0].contains("web/database/selector (1)"));
    assert!(mails[1].contains("cosmos-lab_2"));
    assert!(mails[0].contains("X-RcptTo: david@example.com"), "{}", mails[0]);
    assert!(smtp.wait_for(3, Duration::from_millis(200)).is_err());
}
