//! The route table: which route a request path belongs to. Pure lookups, no I/O.

use std::collections::HashMap;

use http::Method;

use crate::config::{PathMatch, Route};

/// Routes indexed for lookup: exact paths and prefixes by hash, so a lookup costs one hash per
/// `/` in the path whatever the number of routes.
#[derive(Debug)]
pub struct RouteTable {
    routes: Vec<Route>,
    exact: HashMap<String, usize>,
    /// Prefix to index into `routes`.
    prefixes: HashMap<String, usize>,
    /// `prefix_lengths[n]`: some prefix is `n` bytes long (other cut points are not hashed).
    prefix_lengths: Vec<bool>,
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
        let mut prefixes = HashMap::new();
        let mut prefix_lengths = Vec::new();
        for (i, route) in routes.iter().enumerate() {
            match &route.path {
                PathMatch::Exact(path) => {
                    exact.insert(path.clone(), i);
                }
                PathMatch::Prefix(prefix) => {
                    // The config refuses a repeated path; were one here, the first would win.
                    prefixes.entry(prefix.clone()).or_insert(i);
                    if prefix_lengths.len() <= prefix.len() {
                        prefix_lengths.resize(prefix.len() + 1, false);
                    }
                    prefix_lengths[prefix.len()] = true;
                }
            }
        }
        Self { routes, exact, prefixes, prefix_lengths }
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The route for `path`: an exact path wins over a prefix, a longer prefix over a shorter.
    /// Prefixes match whole segments: `/hooks` matches `/hooks` and `/hooks/a`, not `/hooksx`.
    pub fn find(&self, method: &Method, path: &str) -> Lookup<'_> {
        let index = self.exact.get(path).copied().or_else(|| self.longest_prefix(path));
        match index.map(|i| &self.routes[i]) {
            Some(route) if route.methods.contains(method) => Lookup::Found(route),
            Some(route) => Lookup::MethodNotAllowed(route),
            None => Lookup::NotFound,
        }
    }

    /// The route of the longest prefix that matches `path` in whole segments.
    fn longest_prefix(&self, path: &str) -> Option<usize> {
        // A matching prefix is the whole path, or ends just before a '/' of it, or (when the
        // prefix itself ends with '/') just after one. Longest first: the most specific wins.
        // Cuts past the longest prefix never match, so a long path is not scanned to its end.
        let scanned = &path.as_bytes()[..path.len().min(self.prefix_lengths.len())];
        let slashes = scanned.iter().enumerate().rev().filter(|&(_, &byte)| byte == b'/');
        let cuts = std::iter::once(path.len()).chain(slashes.flat_map(|(at, _)| [at + 1, at]));
        cuts.filter(|&len| self.prefix_lengths.get(len).copied().unwrap_or(false))
            .find_map(|len| self.prefixes.get(path.get(..len)?).copied())
    }
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
            ("POST", "/hooks/stripe/", Some("long")),
            ("POST", "/hooks/stripex", Some("short")),
            ("POST", "/hooks//stripe/a", Some("short")),
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

    /// The lookup before prefixes were indexed: the exact path, else every prefix tried in
    /// whole segments, longest first (the first of equal length in table order).
    fn find_by_scan<'a>(routes: &'a [Route], method: &Method, path: &str) -> Lookup<'a> {
        let segment_prefix = |prefix: &str| {
            path.strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || prefix.ends_with('/') || rest.starts_with('/'))
        };
        let exact = routes.iter().rfind(|route| matches!(&route.path, PathMatch::Exact(p) if p == path));
        let mut prefixes: Vec<_> = routes
            .iter()
            .filter_map(|route| match &route.path {
                PathMatch::Prefix(prefix) => Some((prefix.as_str(), route)),
                PathMatch::Exact(_) => None,
            })
            .collect();
        prefixes.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
        let prefix = prefixes.into_iter().find(|(prefix, _)| segment_prefix(prefix)).map(|(_, route)| route);
        match exact.or(prefix) {
            Some(route) if route.methods.contains(method) => Lookup::Found(route),
            Some(route) => Lookup::MethodNotAllowed(route),
            None => Lookup::NotFound,
        }
    }

    fn outcome(lookup: Lookup<'_>) -> (&'static str, Option<&str>) {
        match lookup {
            Lookup::Found(route) => ("found", Some(route.name.as_str())),
            Lookup::MethodNotAllowed(route) => ("method not allowed", Some(route.name.as_str())),
            Lookup::NotFound => ("not found", None),
        }
    }

    proptest::proptest! {
        #[test]
        fn index_agrees_with_a_linear_scan(
            specs in proptest::collection::vec((proptest::bool::ANY, "/[ab/]{0,6}", proptest::bool::ANY), 1..12),
            requests in proptest::collection::vec((proptest::bool::ANY, "[ab/]{0,9}"), 1..16),
        ) {
            let mut seen = std::collections::HashSet::new();
            let mut yaml = String::from("routes:\n");
            for (i, (prefix, path, get)) in specs.into_iter().enumerate() {
                if !seen.insert((prefix, path.clone())) {
                    continue; // the config refuses a repeated path
                }
                let (key, method) = (if prefix { "path_prefix" } else { "path" }, if get { "GET" } else { "POST" });
                yaml.push_str(&format!(
                    "  - {{ name: r{i}, {key}: \"{path}\", methods: [{method}], upstream: echo, \
                     verify: {{ scheme: freispace, secret: s }} }}\n"
                ));
            }
            let config = config::parse(&yaml, "t.yaml".as_ref(), &|_| None).expect("valid config");
            let table = RouteTable::new(config.routes);
            for (get, path) in requests {
                let method = if get { Method::GET } else { Method::POST };
                proptest::prop_assert_eq!(
                    outcome(table.find(&method, &path)),
                    outcome(find_by_scan(table.routes(), &method, &path)),
                    "{} {}", method, path
                );
            }
        }
    }
}
