//! MovieLens 100K from a directory of its original files (`u.data`, `u.item`, `u.user`,
//! `u.genre`, `u.occupation`), and, with the `download` feature, downloaded on first use
//! (`Download`).

#[cfg(feature = "download")]
mod download;

#[cfg(feature = "download")]
pub use download::{CACHE_VAR, Download, MOVIELENS_100K_URL, URL_VAR};

use super::text::read_text;
use super::{Catalog, Interactions, TableFormat};
use crate::{Error, Result};
use std::path::Path;

/// A MovieLens user from `u.user`.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    /// User id.
    pub id: String,
    /// Age in years.
    pub age: u32,
    /// `M` or `F`.
    pub gender: String,
    /// Occupation name (one of `u.occupation`).
    pub occupation: String,
    /// Zip code.
    pub zip: String,
}

/// The MovieLens 100K dataset.
#[derive(Debug, Clone)]
pub struct MovieLens {
    /// All 100,000 ratings (`u.data`).
    pub ratings: Interactions,
    /// Movies with titles in UTF-8 (`u.item` is latin-1).
    pub movies: Catalog,
    /// Genres of each movie, aligned with `movies` (the 19 flags of `u.item` as names).
    pub movie_genres: Vec<Vec<String>>,
    /// Release date of each movie as in `u.item` (e.g. `01-Jan-1995`; may be empty).
    pub movie_dates: Vec<String>,
    /// Users (`u.user`).
    pub users: Vec<User>,
    /// Genre names (`u.genre`).
    pub genres: Vec<String>,
    /// Occupation names (`u.occupation`).
    pub occupations: Vec<String>,
}

fn lines(path: &Path) -> Result<Vec<(u64, Vec<String>)>> {
    Ok(read_text(path)?
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i as u64 + 1, l.split('|').map(str::to_string).collect()))
        .collect())
}

impl MovieLens {
    /// Whether `dir` looks like a MovieLens 100K directory.
    pub fn is_present(dir: impl AsRef<Path>) -> bool {
        ["u.data", "u.item"].iter().all(|f| dir.as_ref().join(f).is_file())
    }

    /// Loads the dataset from its directory.
    pub fn load(dir: impl AsRef<Path>) -> Result<MovieLens> {
        let dir = dir.as_ref();
        let ratings = Interactions::read(
            dir.join("u.data"),
            &TableFormat { delimiter: Some(b'\t'), header: Some(false), ..Default::default() },
        )?;
        let genres: Vec<String> = lines(&dir.join("u.genre"))?.into_iter().map(|(_, f)| f[0].clone()).collect();
        let occupations = match dir.join("u.occupation") {
            p if p.is_file() => {
                read_text(&p)?.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect()
            }
            _ => Vec::new(),
        };
        let item_path = dir.join("u.item");
        let mut pairs = Vec::new();
        let mut movie_genres = Vec::new();
        let mut movie_dates = Vec::new();
        for (line, f) in lines(&item_path)? {
            if f.len() < 5 + genres.len() {
                return Err(Error::parse(
                    &item_path,
                    Some(line),
                    format!("expected {} '|'-separated fields, found {}", 5 + genres.len(), f.len()),
                ));
            }
            movie_genres
                .push(genres.iter().enumerate().filter(|(g, _)| f[5 + g] == "1").map(|(_, n)| n.clone()).collect());
            pairs.push((f[0].clone(), f[1].clone()));
            movie_dates.push(f[2].clone());
        }
        let user_path = dir.join("u.user");
        let mut users = Vec::new();
        if user_path.is_file() {
            for (line, f) in lines(&user_path)? {
                if f.len() != 5 {
                    return Err(Error::parse(
                        &user_path,
                        Some(line),
                        format!("expected 5 '|'-separated fields, found {}", f.len()),
                    ));
                }
                let age = f[1].parse().map_err(|_| {
                    Error::parse(&user_path, Some(line), format!("field 'age': expected a number, found '{}'", f[1]))
                })?;
                users.push(User {
                    id: f[0].clone(),
                    age,
                    gender: f[2].clone(),
                    occupation: f[3].clone(),
                    zip: f[4].clone(),
                });
            }
        }
        Ok(MovieLens {
            ratings,
            movies: Catalog::from_pairs(pairs),
            movie_genres,
            movie_dates,
            users,
            genres,
            occupations,
        })
    }
}
