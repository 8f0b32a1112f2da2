//! Validation of JSON bodies against Cloud Hypervisor's own OpenAPI spec, so neither the
//! client nor the VMM test double can drift from the real API.
//!
//! Shared by the tests and by the double (`ch_double.rs` beside it, which includes this file
//! with `#[path]`). It covers the subset of OpenAPI 3.0 the spec uses: `$ref`, `type`,
//! `properties`, `required`, `items`, `enum`, `additionalProperties`, `minimum`/`maximum` and the
//! integer `format`s. Requests are checked strictly: a property the schema does not name fails,
//! because CH rejects it (or worse, ignores a misspelt field) while plain JSON Schema would let
//! it pass. Replies are checked leniently (unknown properties and `null` optionals pass) since
//! every CH release adds fields and serialises unset options as `null`.

use std::sync::OnceLock;

use serde_json::{Map, Value};

/// The spec lives outside the repository, next to the clone (`../shared/...`), which is also
/// where CI puts it. If it is missing the build stops here, naming the path it looked for.
const SPEC_YAML: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/cloud-hypervisor/cloud-hypervisor.yaml"
));

/// How strictly a body is held to the spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// What we send: no unknown properties, no `null`s.
    Request,
    /// What a VMM answers: unknown properties and `null` optionals are allowed.
    Reply,
}

/// The parsed spec as JSON (YAML's integer keys such as `200:` become strings).
pub struct Spec {
    doc: Value,
}

/// The spec, parsed once per process.
pub fn spec() -> &'static Spec {
    static SPEC: OnceLock<Spec> = OnceLock::new();
    SPEC.get_or_init(|| Spec::parse(SPEC_YAML).unwrap_or_else(|e| panic!("{e}")))
}

/// Validates a request body against the named schema (`VmConfig`, `DeviceConfig`, ...).
/// The error lists every problem, one per line, each with its JSON path.
pub fn validate(schema: &str, body: &Value) -> Result<(), String> {
    spec().validate(schema, body, Mode::Request)
}

/// Validates a reply against the named schema (`VmInfo`, `VmmPingResponse`, `VmCounters`).
pub fn validate_reply(schema: &str, body: &Value, mode: Mode) -> Result<(), String> {
    spec().validate(schema, body, mode)
}

/// Validates the body of a request to `route` (`vm.create`, `/api/v1/vm.add-device`) against
/// the schema the spec gives for it. A route without a body must come with an empty one.
pub fn validate_request(route: &str, body: &[u8]) -> Result<(), String> {
    let route = normalize_route(route);
    let spec = spec();
    match spec.request_schema(&route) {
        None if body.iter().all(u8::is_ascii_whitespace) => Ok(()),
        None => Err(format!("{route} takes no request body")),
        Some(schema) => {
            let value: Value = serde_json::from_slice(body)
                .map_err(|e| format!("{route}: body is not JSON: {e}"))?;
            spec.validate(&schema, &value, Mode::Request)
        }
    }
}

/// `/api/v1/vm.boot` and `vm.boot` both name the route `/vm.boot` of the spec.
pub fn normalize_route(route: &str) -> String {
    let r = route.trim_start_matches("/api/v1");
    let r = r.trim_start_matches('/');
    format!("/{r}")
}

impl Spec {
    pub fn parse(yaml: &str) -> Result<Spec, String> {
        let mut docs = yaml_rust2::YamlLoader::load_from_str(yaml)
            .map_err(|e| format!("cloud-hypervisor.yaml is not valid YAML: {e}"))?;
        if docs.len() != 1 {
            return Err(format!(
                "cloud-hypervisor.yaml holds {} documents, not one",
                docs.len()
            ));
        }
        let doc = yaml_to_json(docs.remove(0));
        if doc.pointer("/components/schemas").is_none() {
            return Err("cloud-hypervisor.yaml has no components.schemas".into());
        }
        Ok(Spec { doc })
    }

    pub fn schema(&self, name: &str) -> Option<&Value> {
        self.doc.get("components")?.get("schemas")?.get(name)
    }

    /// The method the spec gives a route (`get` or `put`).
    pub fn method(&self, route: &str) -> Option<String> {
        let ops = self.doc.get("paths")?.get(normalize_route(route))?;
        ops.as_object()?.keys().next().cloned()
    }

    /// Name of the schema of a route's request body, if it takes one.
    pub fn request_schema(&self, route: &str) -> Option<String> {
        let ops = self.doc.get("paths")?.get(normalize_route(route))?;
        let op = ops.get("put").or_else(|| ops.get("get"))?;
        let r = op.pointer("/requestBody/content/application~1json/schema/$ref")?;
        r.as_str()?.rsplit('/').next().map(str::to_owned)
    }

    pub fn validate(&self, schema: &str, value: &Value, mode: Mode) -> Result<(), String> {
        let root = self
            .schema(schema)
            .ok_or_else(|| format!("the spec has no schema {schema}"))?;
        let mut problems = Vec::new();
        let mut cx = Cx {
            spec: self,
            mode,
            problems: &mut problems,
        };
        cx.check(root, value, "$", schema);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "not a valid {schema}:\n  {}",
                problems.join("\n  ")
            ))
        }
    }
}

struct Cx<'a> {
    spec: &'a Spec,
    mode: Mode,
    problems: &'a mut Vec<String>,
}

impl Cx<'_> {
    fn fail(&mut self, path: &str, msg: String) {
        self.problems.push(format!("{path}: {msg}"));
    }

    /// Checks `value` at `path` against `schema`; `name` is the schema's name for messages.
    fn check(&mut self, schema: &Value, value: &Value, path: &str, name: &str) {
        if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
            let target = r.rsplit('/').next().unwrap_or(r);
            match self.spec.schema(target) {
                Some(s) => self.check(s, value, path, target),
                None => self.fail(path, format!("unresolved $ref {r}")),
            }
            return;
        }
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
            if !allowed.contains(value) {
                let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
                self.fail(path, format!("{value} is not one of {}", list.join(", ")));
                return;
            }
        }
        match schema.get("type").and_then(Value::as_str) {
            Some("object") => self.object(schema, value, path, name),
            Some("array") => match value.as_array() {
                Some(items) => {
                    if let Some(item_schema) = schema.get("items") {
                        for (i, item) in items.iter().enumerate() {
                            self.check(item_schema, item, &format!("{path}[{i}]"), name);
                        }
                    }
                }
                None => self.fail(path, format!("expected an array, found {}", kind(value))),
            },
            Some("string") if !value.is_string() => {
                self.fail(path, format!("expected a string, found {}", kind(value)))
            }
            Some("boolean") if !value.is_boolean() => {
                self.fail(path, format!("expected a boolean, found {}", kind(value)))
            }
            Some("number") if !value.is_number() => {
                self.fail(path, format!("expected a number, found {}", kind(value)))
            }
            Some("integer") => self.integer(schema, value, path),
            _ => {}
        }
    }

    fn object(&mut self, schema: &Value, value: &Value, path: &str, name: &str) {
        let Some(obj) = value.as_object() else {
            self.fail(
                path,
                format!("expected an object ({name}), found {}", kind(value)),
            );
            return;
        };
        let empty = Map::new();
        let props = schema
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        for req in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !obj.contains_key(req) {
                self.fail(path, format!("missing required property `{req}` of {name}"));
            }
        }
        let extra = schema.get("additionalProperties");
        for (key, v) in obj {
            let sub = format!("{path}.{key}");
            if let Some(p) = props.get(key) {
                let optional = !is_required(schema, key);
                if v.is_null() && optional && self.mode == Mode::Reply {
                    continue;
                }
                self.check(p, v, &sub, name);
            } else if let Some(extra) = extra.filter(|e| e.is_object()) {
                self.check(extra, v, &sub, name);
            } else if self.mode == Mode::Request && !props.is_empty() {
                let known: Vec<&str> = props.keys().map(String::as_str).collect();
                self.fail(
                    &sub,
                    format!("unknown property of {name} (known: {})", known.join(", ")),
                );
            }
        }
    }

    fn integer(&mut self, schema: &Value, value: &Value, path: &str) {
        // i128 holds every JSON integer serde_json can produce (i64 or u64).
        let n: i128 = match (value.as_i64(), value.as_u64()) {
            (Some(i), _) => i.into(),
            (None, Some(u)) => u.into(),
            _ => {
                self.fail(path, format!("expected an integer, found {}", kind(value)));
                return;
            }
        };
        let (lo, hi): (i128, i128) = match schema.get("format").and_then(Value::as_str) {
            Some("int8") => (i8::MIN.into(), i8::MAX.into()),
            Some("int16") => (i16::MIN.into(), i16::MAX.into()),
            Some("int32") => (i32::MIN.into(), i32::MAX.into()),
            Some("int64") => (i64::MIN.into(), i64::MAX.into()),
            Some("uint8") => (0, u8::MAX.into()),
            Some("uint16") => (0, u16::MAX.into()),
            Some("uint32") => (0, u32::MAX.into()),
            _ => (i64::MIN.into(), u64::MAX.into()),
        };
        if n < lo || n > hi {
            let f = schema
                .get("format")
                .and_then(Value::as_str)
                .unwrap_or("integer");
            self.fail(path, format!("{n} does not fit {f}"));
        }
        if let Some(min) = schema.get("minimum").and_then(Value::as_i64) {
            if n < min.into() {
                self.fail(path, format!("{n} is below the minimum {min}"));
            }
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_i64) {
            if n > max.into() {
                self.fail(path, format!("{n} is above the maximum {max}"));
            }
        }
    }
}

fn is_required(schema: &Value, key: &str) -> bool {
    schema
        .get("required")
        .and_then(Value::as_array)
        .is_some_and(|r| r.iter().any(|k| k.as_str() == Some(key)))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a number",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn yaml_to_json(v: yaml_rust2::Yaml) -> Value {
    use yaml_rust2::Yaml as Y;
    match v {
        Y::Null | Y::BadValue | Y::Alias(_) => Value::Null,
        Y::Boolean(b) => Value::Bool(b),
        Y::Integer(i) => i.into(),
        // The spec's only reals are bounds; a number JSON cannot hold stays its text.
        Y::Real(text) => text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::String(text), Value::Number),
        Y::String(s) => Value::String(s),
        Y::Array(items) => Value::Array(items.into_iter().map(yaml_to_json).collect()),
        Y::Hash(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| (yaml_key(k), yaml_to_json(v)))
                .collect(),
        ),
    }
}

/// Mapping keys as JSON needs them: response codes such as `200` are YAML integers.
fn yaml_key(k: yaml_rust2::Yaml) -> String {
    match yaml_to_json(k) {
        Value::String(s) => s,
        v => v.to_string(),
    }
}
