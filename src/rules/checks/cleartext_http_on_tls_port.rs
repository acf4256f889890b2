//! `cleartext-http-on-tls-port`: plaintext HTTP on a port where clients expect TLS (443
//! and the other well-known TLS ports; RFC 9110 §4.2.2, §17.16). Code, because conditions
//! have no key for the TCP port. Reported once per connection: on the first message of its
//! first exchange (the request, or the response when the request was not seen).
//!
//! The port list is fixed here (no configuration reaches checks yet): 443, 8443, 9443 and
//! the TLS ports of mail and directory protocols.

use super::{CheckInput, CheckKind, Hit};
use crate::rules::Side;

pub const CHECK: CheckKind = CheckKind::Exchange(run);

const TLS_PORTS: &[u16] = &[443, 8443, 993, 995, 465, 636, 9443];

fn run(input: &CheckInput<'_>) -> Vec<Hit> {
    let ex = input.exchange;
    if ex.connection.tls || ex.index != 0 {
        return Vec::new();
    }
    let first_message = match input.side {
        Some(Side::Request) => ex.request.is_some(),
        Some(Side::Response) => ex.request.is_none() && ex.response.is_some(),
        None => false,
    };
    let port = ex.connection.server.port();
    if !first_message || !TLS_PORTS.contains(&port) {
        return Vec::new();
    }
    vec![Hit::new(port.to_string())]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::syntax::testing::{evidence, exchanges};

    fn ev(example: &str, side: Side) -> Vec<Vec<String>> {
        exchanges(example)
            .iter()
            .map(|ex| evidence(CHECK, ex, Some(side)))
            .collect()
    }

    const TWO: &str = "[[exchange]]\nrequest = \"GET / HTTP/1.1\\nHost: a\\n\\n\"\nresponse = \"HTTP/1.1 200 OK\\nContent-Length: 0\\n\\n\"\n";

    #[test]
    fn once_per_connection_on_the_request() {
        let text = format!("server = \"192.0.2.10:443\"\n{}", TWO.repeat(2));
        assert_eq!(
            ev(&text, Side::Request),
            vec![vec!["443".to_string()], vec![]]
        );
        assert_eq!(
            ev(&text, Side::Response),
            vec![Vec::<String>::new(), vec![]]
        );
    }

    #[test]
    fn response_without_request() {
        let text = "server = \"192.0.2.10:8443\"\nresponse = \"HTTP/1.1 200 OK\\nContent-Length: 0\\n\\n\"\n";
        assert_eq!(ev(text, Side::Response), vec![vec!["8443".to_string()]]);
    }

    #[test]
    fn tls_and_other_ports() {
        let tls = format!("transport = \"tls\"\nserver = \"192.0.2.10:443\"\n{TWO}");
        assert_eq!(ev(&tls, Side::Request), vec![Vec::<String>::new()]);
        assert_eq!(ev(TWO, Side::Request), vec![Vec::<String>::new()]);
    }
}
