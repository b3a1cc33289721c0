//! How each resource maps onto its table: the typed columns copied from the document.

use super::{array_index, StoredResource};
use crate::error::Error;
use crate::resource_kind::ResourceKind;
use chrono::{DateTime, Utc};
use entity::{usage, usage_specification};
use sea_orm::sea_query::{Alias, Expr, SimpleExpr};
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::{NotSet, Set},
    DatabaseBackend, EntityTrait, FromQueryResult, IntoActiveModel, Statement,
};
use serde_json::{Map, Value};

/// The array attributes of `kind` kept in the array-value index (`Table::INDEXED_ARRAY_PATHS`).
pub fn indexed_array_paths(kind: ResourceKind) -> &'static [&'static str] {
    match kind {
        ResourceKind::Usage => usage::Entity::INDEXED_ARRAY_PATHS,
        ResourceKind::UsageSpecification => usage_specification::Entity::INDEXED_ARRAY_PATHS,
    }
}

/// A resource table: documents plus typed copies of the attributes lists filter and sort on.
pub trait Table:
    EntityTrait<
    Model: FromQueryResult + Send + Sync + IntoActiveModel<<Self as EntityTrait>::ActiveModel>,
    ActiveModel: ActiveModelTrait<Entity = Self> + Send,
>
{
    const KIND: ResourceKind;
    /// The tenant a row belongs to (see `store::tenant`).
    fn tenant_column() -> Self::Column;
    fn id_column() -> Self::Column;
    fn revision_column() -> Self::Column;
    fn created_at_column() -> Self::Column;
    /// The row's typed columns; the document column is left unset: an update binds it as
    /// the text it was serialised to (`json_text`), an insert sets it (`writer`).
    fn active_model(row: &StoredResource) -> Self::ActiveModel;
    fn document_column() -> Self::Column;
    fn stored(model: Self::Model) -> StoredResource;
    /// The typed column that holds a first-level attribute, if one does.
    fn column(attribute: &str) -> Option<Self::Column>;
    /// Array attributes whose string values are kept in the array-value index
    /// (`usage_array_value`, see `store::array_index`); only usages have one.
    const INDEXED_ARRAY_PATHS: &'static [&'static str] = &[];
    /// The attributes copied into an indexed column (see the migrations), whose strings
    /// `check_indexed_lengths` bounds.
    const INDEXED_COLUMN_PATHS: &'static [&'static str];
}

/// A JSON document bound as the text it was serialised to, cast to `jsonb` on PostgreSQL, so
/// that it is not copied and serialised once more to be bound.
pub(super) fn json_text(backend: DatabaseBackend, text: String) -> SimpleExpr {
    let text = Expr::val(text);
    match backend {
        DatabaseBackend::Postgres => text.cast_as(Alias::new("jsonb")),
        _ => text.into(),
    }
}

/// The `n`th bound value's placeholder (`$n` on PostgreSQL, `?` on SQLite).
fn placeholder(backend: DatabaseBackend, n: usize) -> String {
    match backend {
        DatabaseBackend::Postgres => format!("${n}"),
        _ => "?".into(),
    }
}

/// `SELECT id, revision, <rendered document> FROM <table> WHERE tenant = <tenant> AND id =
/// <id>`, written out (it is the most frequent query, and its text never changes); it binds
/// the href prefix, then the tenant and the id.
pub(super) fn rendered_by_id<T: Table>(
    backend: DatabaseBackend,
    href_prefix: &str,
    tenant: &str,
    id: &str,
) -> Statement {
    let table = T::default().table_name().to_string();
    let (rendered, mut values) = rendered_sql::<T>(backend, href_prefix);
    values.push(tenant.to_string());
    let tenant_placeholder = placeholder(backend, values.len());
    values.push(id.to_string());
    let id_placeholder = placeholder(backend, values.len());
    let sql = format!(
        r#"SELECT "{table}"."id", "{table}"."revision", {rendered} FROM "{table}" WHERE "{table}"."tenant" = {tenant_placeholder} AND "{table}"."id" = {id_placeholder}"#
    );
    Statement::from_sql_and_values(backend, sql, values.into_iter().map(sea_orm::Value::from))
}

/// The rows of `ids` of `tenant`, rendered, in the order of `ids`: `(position, id, revision,
/// document)`. On SQLite the ids' JSON array is the outer loop of a CROSS JOIN (SQLite keeps
/// that order, and no sorter ever holds the documents); on PostgreSQL an ORDER BY on the
/// ordinality.
pub(super) fn rendered_page<T: Table>(
    backend: DatabaseBackend,
    href_prefix: &str,
    tenant: &str,
    ids: &[String],
) -> Statement {
    let table = T::default().table_name().to_string();
    let (rendered, mut values) = rendered_sql::<T>(backend, href_prefix);
    values.push(serde_json::Value::from(ids).to_string());
    let ids_placeholder = placeholder(backend, values.len());
    values.push(tenant.to_string());
    let tenant_placeholder = placeholder(backend, values.len());
    let sql = match backend {
        DatabaseBackend::Postgres => format!(
            r#"SELECT "page"."n", "{table}"."id", "{table}"."revision", {rendered} FROM jsonb_array_elements_text(CAST({ids_placeholder} AS jsonb)) WITH ORDINALITY AS "page"("id", "n") JOIN "{table}" ON "{table}"."tenant" = {tenant_placeholder} AND "{table}"."id" = "page"."id" ORDER BY "page"."n""#
        ),
        _ => format!(
            r#"SELECT "page"."key", "{table}"."id", "{table}"."revision", {rendered} FROM json_each({ids_placeholder}) AS "page" CROSS JOIN "{table}" ON "{table}"."tenant" = {tenant_placeholder} AND "{table}"."id" = "page"."value""#
        ),
    };
    Statement::from_sql_and_values(backend, sql, values.into_iter().map(sea_orm::Value::from))
}

/// The stored document of a row of `T` as JSON text with `href` set to `href_prefix || id`:
/// the database renders what a read answers, so the text goes to the client unparsed. SQLite
/// keeps the attributes' order and number spelling; PostgreSQL's jsonb has its own. Returns
/// the expression and the texts it binds (placeholders numbered from 1).
///
/// On PostgreSQL a stored document whose `href` already is the one this read gives (the
/// server writes it with the prefix of the request that stored it) is printed as it is:
/// `jsonb_set` would rebuild the whole document before it is printed, and jsonb being
/// canonical, setting an equal value changes nothing in the text.
///
/// On SQLite a stored document usually starts `{"id":"<id>","href":"<href>",` with the href
/// this read would give it (the server writes both first, with the same prefix), and is then
/// answered as stored: re-rendering it (`json_set`) parses and prints the whole document, about
/// a tenth of a read's work. The shortcut is taken only for a prefix JSON prints as it is (no
/// quote, backslash or control character), so the comparison of texts is exact.
fn rendered_sql<T: Table>(backend: DatabaseBackend, href_prefix: &str) -> (String, Vec<String>) {
    let table = T::default().table_name().to_string();
    let id = format!(r#""{table}"."id""#);
    let document = format!(r#""{table}"."document""#);
    match backend {
        DatabaseBackend::Postgres => {
            let href = format!(r#"to_jsonb(CAST($1 AS text) || {id})"#);
            (
                format!(
                    r#"CASE WHEN {document} -> 'href' = {href} THEN CAST({document} AS text) ELSE CAST(jsonb_set({document}, '{{href}}', {href}) AS text) END"#
                ),
                vec![href_prefix.to_string()],
            )
        }
        _ => {
            let render = format!(r#"json_set({document}, '$.href', ? || {id})"#);
            let printed_as_is =
                !href_prefix.contains(['"', '\\']) && !href_prefix.contains(char::is_control);
            if !printed_as_is {
                return (render, vec![href_prefix.to_string()]);
            }
            (
                format!(
                    r#"CASE WHEN instr({document}, '{{"id":"' || {id} || '","href":"' || ? || {id} || '",') = 1 THEN {document} ELSE {render} END"#
                ),
                vec![href_prefix.to_string(), href_prefix.to_string()],
            )
        }
    }
}

/// The most bytes a string kept in an index may hold. PostgreSQL refuses a B-tree entry past
/// about 2.7 KB (8 KB compressed); the same limit on both backends keeps the API one.
pub const MAX_INDEXED_BYTES: usize = 1024;

/// Refuses a document with a string longer than `MAX_INDEXED_BYTES` where the database indexes
/// it (the typed columns lists filter on, the array-value index), naming the attribute.
pub fn check_indexed_lengths<T: Table>(document: &Map<String, Value>) -> Result<(), Error> {
    let too_long = |path: String, value: &str| {
        Err(Error::BadRequest(format!(
            "{path} is {} bytes long; an attribute lists are indexed on holds at most {MAX_INDEXED_BYTES}",
            value.len()
        )))
    };
    for path in T::INDEXED_COLUMN_PATHS {
        let mut keys = path.split('.');
        let first = keys.next().and_then(|key| document.get(key));
        if let Some(Value::String(value)) = keys.fold(first, |at, key| at.and_then(|v| v.get(key)))
        {
            if value.len() > MAX_INDEXED_BYTES {
                return too_long(path.to_string(), value);
            }
        }
    }
    for (path, value) in array_index::values(T::INDEXED_ARRAY_PATHS, document) {
        if value.len() > MAX_INDEXED_BYTES {
            return too_long(path, &value);
        }
    }
    Ok(())
}

fn text(doc: &Map<String, Value>, key: &str) -> Option<String> {
    doc.get(key).and_then(Value::as_str).map(str::to_string)
}

pub(super) fn instant(doc: &Map<String, Value>, key: &str) -> Option<DateTime<Utc>> {
    doc.get(key)
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

fn document(json: Value) -> Map<String, Value> {
    match json {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

impl Table for usage::Entity {
    const KIND: ResourceKind = ResourceKind::Usage;
    // The values a usage is looked up by, with few usages each (unlike `role` or
    // `usageCharacteristic.name`, where an index would not narrow anything down).
    const INDEXED_ARRAY_PATHS: &'static [&'static str] =
        &["relatedParty.id", "ratedProductUsage.productRef.id"];
    const INDEXED_COLUMN_PATHS: &'static [&'static str] =
        &["usageType", "status", "usageSpecification.id"];

    fn tenant_column() -> usage::Column {
        usage::Column::Tenant
    }
    fn id_column() -> usage::Column {
        usage::Column::Id
    }
    fn revision_column() -> usage::Column {
        usage::Column::Revision
    }
    fn created_at_column() -> usage::Column {
        usage::Column::CreatedAt
    }
    fn document_column() -> usage::Column {
        usage::Column::Document
    }

    fn active_model(row: &StoredResource) -> usage::ActiveModel {
        let doc = &row.document;
        usage::ActiveModel {
            tenant: Set(row.tenant.clone()),
            id: Set(row.id.clone()),
            revision: Set(row.revision),
            created_at: Set(row.created_at),
            usage_date: Set(instant(doc, "usageDate")),
            usage_type: Set(text(doc, "usageType")),
            status: Set(text(doc, "status")),
            description: Set(text(doc, "description")),
            usage_specification_id: Set(doc
                .get("usageSpecification")
                .and_then(|s| s.get("id"))
                .and_then(Value::as_str)
                .map(str::to_string)),
            at_type: Set(text(doc, "@type")),
            document: NotSet,
        }
    }

    fn stored(model: usage::Model) -> StoredResource {
        StoredResource {
            tenant: model.tenant,
            id: model.id,
            revision: model.revision,
            created_at: model.created_at,
            document: document(model.document),
        }
    }

    fn column(attribute: &str) -> Option<usage::Column> {
        Some(match attribute {
            "id" => usage::Column::Id,
            "usageDate" => usage::Column::UsageDate,
            "usageType" => usage::Column::UsageType,
            "status" => usage::Column::Status,
            "description" => usage::Column::Description,
            "@type" => usage::Column::AtType,
            _ => return None,
        })
    }
}

impl Table for usage_specification::Entity {
    const KIND: ResourceKind = ResourceKind::UsageSpecification;
    const INDEXED_COLUMN_PATHS: &'static [&'static str] = &["name", "lifecycleStatus"];

    fn tenant_column() -> usage_specification::Column {
        usage_specification::Column::Tenant
    }
    fn id_column() -> usage_specification::Column {
        usage_specification::Column::Id
    }
    fn revision_column() -> usage_specification::Column {
        usage_specification::Column::Revision
    }
    fn created_at_column() -> usage_specification::Column {
        usage_specification::Column::CreatedAt
    }
    fn document_column() -> usage_specification::Column {
        usage_specification::Column::Document
    }

    fn active_model(row: &StoredResource) -> usage_specification::ActiveModel {
        let doc = &row.document;
        usage_specification::ActiveModel {
            tenant: Set(row.tenant.clone()),
            id: Set(row.id.clone()),
            revision: Set(row.revision),
            created_at: Set(row.created_at),
            name: Set(text(doc, "name")),
            lifecycle_status: Set(text(doc, "lifecycleStatus")),
            version: Set(text(doc, "version")),
            last_update: Set(instant(doc, "lastUpdate")),
            description: Set(text(doc, "description")),
            at_type: Set(text(doc, "@type")),
            document: NotSet,
        }
    }

    fn stored(model: usage_specification::Model) -> StoredResource {
        StoredResource {
            tenant: model.tenant,
            id: model.id,
            revision: model.revision,
            created_at: model.created_at,
            document: document(model.document),
        }
    }

    fn column(attribute: &str) -> Option<usage_specification::Column> {
        use usage_specification::Column as C;
        Some(match attribute {
            "id" => C::Id,
            "name" => C::Name,
            "lifecycleStatus" => C::LifecycleStatus,
            "version" => C::Version,
            "lastUpdate" => C::LastUpdate,
            "description" => C::Description,
            "@type" => C::AtType,
            _ => return None,
        })
    }
}
