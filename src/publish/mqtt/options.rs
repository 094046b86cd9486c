//! What rumqttc is told: the validated settings as its options. The session
//! is persistent under the stable client id, so the broker keeps what was
//! subscribed and queued across reconnects; the last will marks the instance
//! offline when the connection dies without a goodbye.
use std::time::Duration;

use rumqttc::{LastWill, MqttOptions, QoS, TlsConfiguration, Transport};

use super::WINDOW;
use crate::config::{MqttSettings, Qos};

pub fn qos(q: Qos) -> QoS {
    match q {
        Qos::AtMostOnce => QoS::AtMostOnce,
        Qos::AtLeastOnce => QoS::AtLeastOnce,
        Qos::ExactlyOnce => QoS::ExactlyOnce,
    }
}

pub fn options(s: &MqttSettings) -> MqttOptions {
    let mut o = MqttOptions::new(s.instance.clone(), s.host.clone(), s.port);
    o.set_clean_session(false);
    o.set_keep_alive(Duration::from_secs(30));
    o.set_inflight(WINDOW as u16);
    o.set_max_packet_size(1 << 20, 1 << 20);
    o.set_last_will(LastWill::new(
        s.status_topic(),
        "offline",
        QoS::AtLeastOnce,
        true,
    ));
    if let Some(u) = &s.username {
        o.set_credentials(u.clone(), s.password().unwrap_or_default());
    }
    if let Some(t) = &s.tls {
        crate::tls::install_provider();
        let tls = match &t.ca {
            Some(ca) => TlsConfiguration::Simple {
                ca: ca.clone(),
                alpn: None,
                client_auth: t.client_auth.clone(),
            },
            // Validation makes a client certificate come with its CA.
            None => TlsConfiguration::default(),
        };
        o.set_transport(Transport::tls_with_config(tls));
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::validate::lab_config;

    #[test]
    fn the_session_survives_reconnects_and_the_will_marks_the_instance_offline() {
        let v = lab_config(
            "[mqtt]\nurl = \"mqtt://127.0.0.1:1884\"\ntopic_prefix = \"site7\"\nusername = \"u\"\npassword = \"p\"",
            "",
        );
        let s = v.mqtt.as_ref().unwrap();
        let o = options(s);
        assert!(!o.clean_session(), "a persistent session keeps QoS 1 state");
        assert_eq!(o.client_id(), "bessmon-01");
        assert_eq!(o.broker_address(), ("127.0.0.1".to_string(), 1884));
        let will = o.last_will().unwrap();
        assert_eq!(will.topic, "site7/bessmon-01/status");
        assert_eq!(&will.message[..], b"offline");
        assert!(will.retain);
        let login = o.credentials().unwrap();
        assert_eq!(
            (login.username.as_str(), login.password.as_str()),
            ("u", "p")
        );
        assert_eq!(o.inflight(), WINDOW as u16);
    }
}
