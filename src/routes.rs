//! The route table: which route a request path belongs to. Pure lookups, no I/O.

use std::collections::HashMap;

use http::Method;

use crate::config::{PathMatch, Route};

/// Routes indexed for lookup: exact paths by hash, prefixes longest first.
#[derive(Debug)]
pub struct RouteTable {
    routes: Vec<Route>,
    exact: HashMap<String, usize>,
    /// (prefix, index into `routes`), longest prefix first so the most specific wins.
    prefixes: Vec<(String, usize)>,
}

/// The result of a lookup.
#[derive(Debug)]
pub enum Lookup<'a> {
    Found(&'a Route),
    /// The path belongs to this route, but not with this method.
    MethodNotAllowed(&'a Route),
    NotFound,
}

impl RouteTable {
    pub fn new(routes: Vec<Route>) -> Self {
        let mut exact = HashMap::new();
        let mut prefixes = Vec::new();
        for (i, route) in routes.iter().enumerate() {
            match &route.path {
                PathMatch::Exact(path) => {
                    exact.insert(path.clone(), i);
                }
                PathMatch::Prefix(prefix) => prefixes.push((prefix.clone(), i)),
            }
        }
        prefixes.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
        Self { routes, exact, prefixes }
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The route for `path`: an exact path wins over a prefix, a longer prefix over a shorter.
    /// Prefixes match whole segments: `/hooks` matches `/hooks` and `/hooks/a`, not `/hooksx`.
    pub fn find(&self, method: &Method, path: &str) -> Lookup<'_> {
        let index =
            self.exact.get(path).copied().or_else(|| {
                self.prefixes.iter().find(|(prefix, _)| segment_prefix(prefix, path)).map(|&(_, index)| index)
            });
        match index.map(|i| &self.routes[i]) {
            Some(route) if route.methods.contains(method) => Lookup::Found(route),
            Some(route) => Lookup::MethodNotAllowed(route),
            None => Lookup::NotFound,
        }
    }
}

fn segment_prefix(prefix: &str, path: &str) -> bool {
    path.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || prefix.ends_with('/') || rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;

    fn table() -> RouteTable {
        let yaml = r#"
routes:
  - { name: exact, path: /hooks/github, upstream: echo, verify: { scheme: freispace, secret: s } }
  - { name: short, path_prefix: /hooks, upstream: echo, verify: { scheme: freispace, secret: s } }
  - { name: long, path_prefix: /hooks/stripe/, methods: [POST, PUT], upstream: echo, verify: { scheme: freispace, secret: s } }
  - { name: root, path: /, methods: [GET], upstream: echo, verify: { scheme: freispace, secret: s } }
"#;
        let config = config::parse(yaml, "t.yaml".as_ref(), &|_| None).expect("valid config");
        RouteTable::new(config.routes)
    }

    #[test]
    fn lookup_table() {
        let table = table();
        let cases = [
            ("POST", "/hooks/github", Some("exact")),
            ("POST", "/hooks/github/x", Some("short")),
            ("POST", "/hooks", Some("short")),
            ("POST", "/hooks/", Some("short")),
            ("POST", "/hooks/other", Some("short")),
            ("POST", "/hooksx", None),
            ("POST", "/hooks/stripe/a", Some("long")),
            ("PUT", "/hooks/stripe/a", Some("long")),
            ("POST", "/hooks/stripe", Some("short")),
            ("GET", "/", Some("root")),
            ("POST", "/nothing", None),
            ("POST", "", None),
        ];
        for (method, path, expected) in cases {
            let method = Method::from_bytes(method.as_bytes()).expect("method");
            let found = match table.find(&method, path) {
                Lookup::Found(route) => Some(route.name.as_str()),
                Lookup::MethodNotAllowed(_) | Lookup::NotFound => None,
            };
            assert_eq!(found, expected, "{method} {path}");
        }
    }

    #[test]
    fn wrong_method_names_the_route() {
        let table = table();
        match table.find(&Method::GET, "/hooks/github") {
            Lookup::MethodNotAllowed(route) => assert_eq!(route.methods, vec![Method::POST]),
            other => panic!("expected 405, got {other:?}"),
        }
        assert!(matches!(table.find(&Method::DELETE, "/nowhere"), Lookup::NotFound));
    }
}
