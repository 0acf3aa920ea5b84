//! `GET /openapi.json`: every route the server answers is in the document, with its error
//! body, and real answers — successes and errors — validate against its schemas.

mod common;

use common::Fixture;
use common::server::Server;
use serde_json::{Value, json};

/// Checks `answer` against the component schema `name` of `doc` (its `$ref`s resolved in it).
fn valid(doc: &Value, name: &str, answer: &Value) {
    let schema = json!({"$ref": format!("#/components/schemas/{name}"), "components": doc["components"]});
    let v = jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{name}: not a schema: {e}"));
    let errors: Vec<String> = v.iter_errors(answer).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{name} does not describe {answer}: {errors:?}");
}

/// The schema of the JSON answer of `method path` with `status`.
fn answer_schema<'a>(doc: &'a Value, method: &str, path: &str, status: &str) -> &'a Value {
    &doc["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]
}

#[test]
fn the_document_has_every_route_and_real_answers_validate() {
    let f = Fixture::new("openapi");
    assert!(f.train("m", &[]).status.success());
    let s = Server::start(&f.path("m"));
    let (status, doc) = s.get_json("/openapi.json");
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    // every route, and only them: each one documented answers, an undocumented one is 404
    let routes = [
        ("get", "/healthz"),
        ("get", "/v1/model"),
        ("get", "/v1/recommend"),
        ("post", "/v1/recommend"),
        ("get", "/v1/similar"),
        ("post", "/v1/events"),
        ("get", "/metrics"),
        ("get", "/openapi.json"),
    ];
    let documented: Vec<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(p, ops)| ops.as_object().unwrap().keys().map(move |m| (m.clone(), p.clone())))
        .collect();
    assert_eq!(documented.len(), routes.len(), "{documented:?}");
    for (m, p) in routes {
        assert!(documented.contains(&(m.to_string(), p.to_string())), "{m} {p} is not documented");
        if m == "get" {
            let (status, body) = s.request("GET", p, None);
            assert_ne!(status, 404, "{p}: {body}");
        }
    }
    assert_eq!(s.get_json("/v1/nothing").0, 404);
    // every error status the server gives is documented, with the error body
    let text = doc.to_string();
    for code in ["400", "404", "405", "408", "413", "414", "415", "422", "431", "500", "503"] {
        assert!(text.contains(code), "status {code} is not in the document");
    }
    assert_eq!(answer_schema(&doc, "get", "/v1/recommend", "422")["$ref"], "#/components/schemas/ErrorBody");
    // real answers validate against the schemas the document gives them
    let (_, r) = s.get_json("/v1/recommend?user=7&k=5&exclude_seen=true");
    valid(&doc, "Answer", &r);
    let (_, r) = s.post_json("/v1/recommend", r#"{"user": 7, "k": "3", "exclude": "1,2"}"#);
    valid(&doc, "Answer", &r);
    let (_, r) = s.get_json("/v1/similar?item=5&k=4");
    valid(&doc, "Answer", &r);
    let (_, m) = s.get_json("/v1/model");
    valid(&doc, "ModelInfo", &m);
    for (status, e) in [
        s.get_json("/v1/recommend?user=7&k=0"),
        s.get_json("/v1/recommend?user=7&colour=red"),
        s.get_json("/v1/similar?item=nope"),
        s.post_json("/v1/recommend", "{not json"),
    ] {
        assert!(status >= 400, "{e}");
        valid(&doc, "ErrorBody", &e);
    }
    // and the schemas are not vacuous: an answer of another shape fails
    let schema = json!({"$ref": "#/components/schemas/Answer", "components": doc["components"]});
    assert!(!jsonschema::validator_for(&schema).unwrap().is_valid(&json!({"items": "no"})));
    // the request body documents the request's keys beside the query
    let body = doc["components"]["schemas"]["RecommendBody"].to_string();
    assert!(
        body.contains("\"user\"") && body.contains("\"history\"") && body.contains("schemas/RequestFields"),
        "{body}"
    );
    let fields = &doc["components"]["schemas"]["RequestFields"]["properties"];
    for key in ["k", "exclude_seen", "exclude", "allow", "diversity", "caps", "boost", "dedupe", "retrieve", "debug"] {
        assert!(fields.get(key).is_some(), "RequestFields lacks {key}: {fields}");
    }
}
