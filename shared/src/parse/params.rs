//! Reading request parameters the FHIR way: unknown ones are ignored, or refused when the
//! client prefers `handling=strict`.

use super::Invalid;
use super::prefer::Handling;

/// The parameters of one request, with the names a route knows.
pub struct ParamReader<'a> {
    pairs: &'a [(String, String)],
}

impl<'a> ParamReader<'a> {
    /// Checks every name against `known` first: an unknown one is refused under strict
    /// handling and otherwise left for nobody to read.
    /// A known parameter given without a value is refused: it cannot mean anything.
    pub fn new(
        pairs: &'a [(String, String)],
        known: &[&str],
        handling: Handling,
    ) -> Result<Self, Invalid> {
        if let Some((name, _)) = pairs
            .iter()
            .find(|(name, value)| known.contains(&name.as_str()) && value.trim().is_empty())
        {
            return Err(Invalid(format!("the parameter {name:?} has no value")));
        }
        if handling == Handling::Strict
            && let Some((name, _)) = pairs
                .iter()
                .find(|(name, _)| !known.contains(&name.as_str()))
        {
            return Err(Invalid(format!(
                "unknown parameter {name:?} (known: {})",
                known.join(", ")
            )));
        }
        Ok(Self { pairs })
    }

    /// Every value given for `name`, in order.
    pub fn all(&self, name: &str) -> impl Iterator<Item = &'a str> + '_ {
        let name = name.to_owned();
        self.pairs
            .iter()
            .filter(move |(n, _)| *n == name)
            .map(|(_, value)| value.trim())
    }

    /// The value of a parameter that may be given once.
    pub fn single(&self, name: &str) -> Result<Option<&'a str>, Invalid> {
        let mut values = self.all(name);
        let first = values.next();
        if values.next().is_some() {
            return Err(Invalid(format!(
                "the parameter {name:?} may be given only once"
            )));
        }
        Ok(first)
    }

    /// A whole number in `range`, when given.
    pub fn integer(
        &self,
        name: &str,
        range: std::ops::RangeInclusive<u32>,
    ) -> Result<Option<u32>, Invalid> {
        let Some(text) = self.single(name)? else {
            return Ok(None);
        };
        text.parse::<u32>()
            .ok()
            .filter(|value| range.contains(value))
            .map(Some)
            .ok_or_else(|| {
                Invalid(format!(
                    "{name}={text:?}: expected a whole number from {} to {}",
                    range.start(),
                    range.end()
                ))
            })
    }
}
