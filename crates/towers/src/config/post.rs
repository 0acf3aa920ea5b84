//! The post-ranking rules of a pipeline as settings: [`PostRanking`] (a pipeline's `[post]`
//! table), [`Cap`], and [`PostOverrides`], a caller's per-request changes to them. Plain data,
//! read and checked here; `recommend` applies them.

use crate::{Error, Result};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use std::fmt;

/// At most `max` items sharing a value of `attribute` (a multi-valued attribute such as genres,
/// `|`-separated, counts each of its values).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Cap {
    /// A column of the pipeline's item attributes.
    pub attribute: String,
    /// Items per value.
    pub max: usize,
}

impl std::str::FromStr for Cap {
    type Err = Error;

    /// `ATTRIBUTE:MAX`, e.g. `genres:3`.
    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::Config(format!("cap '{s}': expected ATTRIBUTE:MAX, e.g. genres:3"));
        let (a, m) = s.rsplit_once(':').ok_or_else(bad)?;
        let max = m.trim().parse().map_err(|_| bad())?;
        if a.trim().is_empty() {
            return Err(bad());
        }
        Ok(Cap { attribute: a.trim().to_string(), max })
    }
}

fn default_boost_weight() -> f32 {
    0.1
}

/// The post-ranking rules of a pipeline (its `[post]` table; every field can be overridden per
/// request). The default applies none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PostRanking {
    /// Maximal marginal relevance λ in `[0, 1]`: each next item maximises
    /// `(1 − λ)·relevance − λ·redundancy`, both in `[0, 1]` and free of the ranker's score scale
    /// and of the embeddings' geometry: the relevance the ranker's score scaled over the
    /// candidates (1 for the best, 0 for the last), the redundancy the candidate's mean cosine
    /// similarity to the items already chosen (what it would add to the list's intra-list
    /// similarity) as the share of the first item's cosine similarities to the other candidates
    /// below it. 0: by score; 0.5: both weigh the same.
    pub diversity: f32,
    /// Caps per attribute value.
    pub caps: Vec<Cap>,
    /// Item ids never returned.
    pub exclude: Vec<String>,
    /// Item ids whose relevance is raised by `boost_weight`.
    pub boost: Vec<String>,
    /// What a boost adds to the relevance (whose `[0, 1]` spans the candidates' scores).
    #[serde(default = "default_boost_weight")]
    pub boost_weight: f32,
    /// Keep the best item per value of this attribute (or `title`).
    pub dedupe: Option<String>,
}

impl Default for PostRanking {
    fn default() -> Self {
        PostRanking {
            diversity: 0.0,
            caps: Vec::new(),
            exclude: Vec::new(),
            boost: Vec::new(),
            boost_weight: default_boost_weight(),
            dedupe: None,
        }
    }
}

impl PostRanking {
    /// Checks the values (attributes are checked against a pipeline's attributes when it loads).
    pub fn validate(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.diversity) {
            return Err(Error::Config(format!("diversity must be in [0, 1], got {}", self.diversity)));
        }
        if !(self.boost_weight.is_finite() && (0.0..=10.0).contains(&self.boost_weight)) {
            return Err(Error::Config(format!("boost_weight must be in [0, 10], got {}", self.boost_weight)));
        }
        if let Some(c) = self.caps.iter().find(|c| c.max == 0) {
            return Err(Error::Config(format!("caps: '{}' has max 0 (at least 1)", c.attribute)));
        }
        Ok(())
    }

    /// The attributes the rules name (caps, dedupe).
    pub fn attributes(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.caps
            .iter()
            .map(|c| ("caps", c.attribute.as_str()))
            .chain(self.dedupe.iter().map(|d| ("dedupe", d.as_str())))
    }

    /// Whether any rule applies (otherwise the ranker's order is kept).
    pub fn is_noop(&self) -> bool {
        self.diversity == 0.0 && self.caps.is_empty() && self.boost.is_empty() && self.dedupe.is_none()
    }
}

/// A caller's per-request changes to a pipeline's post-ranking rules (the CLI's `--diversity`,
/// `--cap`, `--boost`, `--dedupe`, the same names over HTTP and in Python): each one given
/// replaces the pipeline's rule. A plain model refuses them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PostOverrides {
    /// The MMR λ in `[0, 1]`.
    pub diversity: Option<f32>,
    /// Caps per attribute value (an empty list removes the pipeline's).
    pub caps: Option<Vec<Cap>>,
    /// Item ids to lift (an empty list removes the pipeline's).
    pub boost: Option<Vec<String>>,
    /// One item per value of this attribute.
    pub dedupe: Option<String>,
}

impl PostOverrides {
    /// Whether nothing is changed.
    pub fn is_empty(&self) -> bool {
        self.diversity.is_none() && self.caps.is_none() && self.boost.is_none() && self.dedupe.is_none()
    }

    /// Checks the values given (the attributes are checked against a pipeline's when merged).
    pub fn validate(&self) -> Result<()> {
        let mut p = PostRanking::default();
        self.apply_to(&mut p);
        p.validate()
    }

    /// `base` with these changes and the item ids `exclude` added, checked: the rules of one
    /// answer.
    pub fn merged(&self, base: &PostRanking, exclude: &[String]) -> Result<PostRanking> {
        let mut p = base.clone();
        self.apply_to(&mut p);
        p.exclude.extend(exclude.iter().filter(|id| !base.exclude.contains(id)).cloned());
        p.validate()?;
        Ok(p)
    }

    fn apply_to(&self, p: &mut PostRanking) {
        if let Some(d) = self.diversity {
            p.diversity = d;
        }
        if let Some(c) = &self.caps {
            p.caps = c.clone();
        }
        if let Some(b) = &self.boost {
            p.boost = b.clone();
        }
        if self.dedupe.is_some() {
            p.dedupe = self.dedupe.clone();
        }
    }
}

/// The visits of an optional value: `null` (or nothing) is `None`, `Some(x)` is read as `x`.
macro_rules! absent_is_none {
    () => {
        fn visit_none<E: de::Error>(self) -> std::result::Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> std::result::Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> std::result::Result<Self::Value, D2::Error> {
            d.deserialize_any(self)
        }
    };
}

/// Deserializes an optional value from its own type or from text (a query string's `k=10`, a
/// JSON `10`, `"10"` or `null`), for the request types every face reads.
pub fn lenient<'de, D, T>(d: D) -> std::result::Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: std::str::FromStr,
    T::Err: fmt::Display,
{
    struct V<T>(std::marker::PhantomData<T>);
    impl<'de, T: std::str::FromStr> Visitor<'de> for V<T>
    where
        T::Err: fmt::Display,
    {
        type Value = Option<T>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a number, a boolean or their text")
        }
        fn visit_str<E: de::Error>(self, s: &str) -> std::result::Result<Self::Value, E> {
            s.trim().parse().map(Some).map_err(|e| E::custom(format!("'{}': {e}", cut(s))))
        }
        fn visit_u64<E: de::Error>(self, n: u64) -> std::result::Result<Self::Value, E> {
            self.visit_str(&n.to_string())
        }
        fn visit_i64<E: de::Error>(self, n: i64) -> std::result::Result<Self::Value, E> {
            self.visit_str(&n.to_string())
        }
        fn visit_f64<E: de::Error>(self, n: f64) -> std::result::Result<Self::Value, E> {
            self.visit_str(&n.to_string())
        }
        fn visit_bool<E: de::Error>(self, b: bool) -> std::result::Result<Self::Value, E> {
            self.visit_str(&b.to_string())
        }
        absent_is_none!();
    }
    d.deserialize_any(V(std::marker::PhantomData))
}

/// A value quoted in an error, cut to 64 characters.
fn cut(s: &str) -> String {
    s.chars().take(64).collect()
}

/// Deserializes a list of ids: a JSON list (of strings or numbers) or comma-separated text.
pub fn ids<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<Vec<String>>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<Vec<String>>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list of ids or comma-separated ids")
        }
        fn visit_str<E: de::Error>(self, s: &str) -> std::result::Result<Self::Value, E> {
            Ok(Some(s.split(',').map(str::trim).filter(|x| !x.is_empty()).map(String::from).collect()))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(v) = seq.next_element::<Id>()? {
                out.push(v.0);
            }
            Ok(Some(out))
        }
        absent_is_none!();
    }
    d.deserialize_any(V)
}

/// An id: a string, or a number written as one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Id(pub String);

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Id;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an id (a string or a number)")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> std::result::Result<Id, E> {
                Ok(Id(s.to_string()))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> std::result::Result<Id, E> {
                Ok(Id(n.to_string()))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> std::result::Result<Id, E> {
                Ok(Id(n.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// Deserializes caps: `"genres:3,year:1"`, `["genres:3"]`, `[{"attribute": "genres", "max": 3}]`
/// or `{"genres": 3}`.
pub fn caps<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<Vec<Cap>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum One {
        Text(String),
        Cap(Cap),
    }
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<Vec<Cap>>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("caps: ATTRIBUTE:MAX, comma-separated, a list of them, or a map of attribute to max")
        }
        fn visit_str<E: de::Error>(self, s: &str) -> std::result::Result<Self::Value, E> {
            let parts = s.split(',').map(str::trim).filter(|x| !x.is_empty());
            parts.map(|c| c.parse::<Cap>().map_err(E::custom)).collect::<std::result::Result<_, _>>().map(Some)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(one) = seq.next_element::<One>()? {
                out.push(match one {
                    One::Text(t) => t.parse().map_err(de::Error::custom)?,
                    One::Cap(c) => c,
                });
            }
            Ok(Some(out))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some((attribute, max)) = map.next_entry::<String, usize>()? {
                out.push(Cap { attribute, max });
            }
            Ok(Some(out))
        }
        absent_is_none!();
    }
    d.deserialize_any(V)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_the_rules_given() {
        let base = PostRanking { diversity: 0.3, exclude: vec!["a".into()], ..PostRanking::default() };
        assert_eq!(PostOverrides::default().merged(&base, &[]).unwrap(), base);
        let o = PostOverrides { caps: Some(vec!["genres:2".parse().unwrap()]), ..Default::default() };
        let p = o.merged(&base, &["a".into(), "b".into()]).unwrap();
        assert_eq!((p.diversity, p.caps.len(), p.exclude), (0.3, 1, vec!["a".to_string(), "b".to_string()]));
        let e = PostOverrides { diversity: Some(2.0), ..Default::default() }.merged(&base, &[]).unwrap_err();
        assert!(e.to_string().contains("diversity must be in [0, 1]"), "{e}");
    }
}
