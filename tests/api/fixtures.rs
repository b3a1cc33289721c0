//! Realistic TMF635 bodies, in the spirit of the examples of the specification.

use serde_json::{json, Value};

/// A rated voice call of a customer, with every kind of nested object the `Usage` schema
/// has, sub-class markers (`@type`, `@baseType`, `@schemaLocation`) and one extension
/// attribute (`roamingZone`) of the `VoiceUsage` sub-class.
pub fn voice_usage() -> Value {
    json!({
        "description": "Voice call to +33 1 23 45 67 89",
        "usageDate": "2020-09-21T09:13:16-07:00",
        "usageType": "VOICE",
        "status": "rated",
        "@type": "VoiceUsage",
        "@baseType": "Usage",
        "@schemaLocation": "https://usage.example.com/schemas/VoiceUsage.schema.json",
        "roamingZone": "EU",
        "usageSpecification": {
            "id": "af59-340e",
            "href": "https://usage.example.com/tmf-api/usageManagement/v4/usageSpecification/af59-340e",
            "name": "CallSpec",
            "@referredType": "UsageSpecification"
        },
        "usageCharacteristic": [
            {
                "id": "c-1",
                "name": "originatingCountryCode",
                "valueType": "string",
                "value": "43"
            },
            {"name": "originatingNumber", "valueType": "string", "value": "676123456789"},
            {"name": "destinationCountryCode", "valueType": "string", "value": "49"},
            {"name": "duration", "valueType": "integer", "value": 20},
            {"name": "unit", "valueType": "string", "value": "SEC"},
            {"name": "startDateTime", "valueType": "dateTime", "value": "2020-09-21T16:12:56Z"},
            {
                "name": "cell",
                "valueType": "object",
                "value": {"mcc": 232, "mnc": "01", "lac": 4711, "location": {"lat": 48.2082, "lon": 16.3738}},
                "@type": "ObjectCharacteristic",
                "characteristicRelationship": [{"id": "c-1", "relationshipType": "dependsOn"}]
            }
        ],
        "relatedParty": [
            {
                "id": "45hj-8888",
                "href": "https://party.example.com/tmf-api/partyManagement/v4/individual/45hj-8888",
                "name": "Jean Pontus",
                "role": "customer",
                "@referredType": "Individual"
            },
            {
                "id": "7849",
                "name": "Roaming Partner AG",
                "role": "partner",
                "@referredType": "Organization",
                "@type": "RelatedPartyRef",
                "partnerCode": "ATXYZ"
            }
        ],
        "ratedProductUsage": [
            {
                "isBilled": false,
                "isTaxExempt": false,
                "offerTariffType": "Normal",
                "ratingAmountType": "Total",
                "ratingDate": "2020-09-21T16:15:00Z",
                "taxRate": 20.5,
                "usageRatingTag": "Usage",
                "productRef": {
                    "id": "1234-1234",
                    "href": "https://product.example.com/tmf-api/productInventory/v4/product/1234-1234",
                    "name": "Mobile Classic",
                    "@referredType": "Product"
                },
                "taxIncludedRatingAmount": {"unit": "EUR", "value": 12.05},
                "taxExcludedRatingAmount": {"unit": "EUR", "value": 10},
                "bucketValueConvertedInAmount": {"unit": "EUR", "value": 0}
            }
        ]
    })
}

/// A smaller usage of `usage_type` in `status`, for lists and filters.
pub fn usage(usage_type: &str, status: &str) -> Value {
    json!({
        "description": format!("{usage_type} usage, {status}"),
        "usageDate": "2024-05-01T10:00:00Z",
        "usageType": usage_type,
        "status": status,
        "usageSpecification": {"id": format!("{usage_type}-spec"), "@referredType": "UsageSpecification"},
        "usageCharacteristic": [{"name": "volume", "valueType": "integer", "value": 100}],
        "relatedParty": [{"id": "cust-1", "role": "customer", "@referredType": "Individual"}]
    })
}

/// A usage specification for voice calls, with characteristic specifications and every
/// kind of nested object the `UsageSpecification` schema has.
pub fn voice_specification() -> Value {
    json!({
        "name": "CallSpec",
        "description": "Specification of voice call usages",
        "version": "1.0",
        "lifecycleStatus": "active",
        "isBundle": false,
        "@type": "UsageSpecification",
        "@baseType": "EntitySpecification",
        "@schemaLocation": "https://usage.example.com/schemas/UsageSpecification.schema.json",
        "validFor": {"startDateTime": "2020-01-01T00:00:00Z", "endDateTime": "2030-12-31T23:59:59Z"},
        "targetEntitySchema": {
            "@schemaLocation": "https://usage.example.com/schemas/VoiceUsage.schema.json",
            "@type": "VoiceUsage"
        },
        "relatedParty": [
            {"id": "org-17", "name": "Network Operations", "role": "owner", "@referredType": "Organization"}
        ],
        "attachment": [
            {
                "id": "att-1",
                "name": "Tariff sheet",
                "attachmentType": "document",
                "mimeType": "application/pdf",
                "url": "https://docs.example.com/tariffs/voice.pdf",
                "size": {"amount": 1.5, "units": "MB"},
                "@referredType": "Attachment"
            }
        ],
        "constraint": [{"id": "k-1", "name": "maxCallDuration", "version": "2", "@referredType": "Constraint"}],
        "entitySpecRelationship": [
            {
                "relationshipType": "dependency",
                "id": "spec-42",
                "name": "NetworkEventSpec",
                "role": "source",
                "validFor": {"startDateTime": "2020-01-01T00:00:00Z"},
                "associationSpec": {"id": "assoc-1", "@referredType": "AssociationSpecification"}
            }
        ],
        "specCharacteristic": [
            {
                "id": "sc-1",
                "name": "duration",
                "description": "Call duration",
                "valueType": "integer",
                "configurable": false,
                "extensible": false,
                "isUnique": true,
                "minCardinality": 1,
                "maxCardinality": 1,
                "regex": "^[0-9]+$",
                "@valueSchemaLocation": "https://usage.example.com/schemas/duration.json",
                "validFor": {"startDateTime": "2020-01-01T00:00:00Z"},
                "characteristicValueSpecification": [
                    {
                        "valueType": "integer",
                        "isDefault": true,
                        "value": 0,
                        "unitOfMeasure": "SEC",
                        "valueFrom": 0,
                        "valueTo": 86400,
                        "rangeInterval": "closed"
                    }
                ],
                "charSpecRelationship": [
                    {"characteristicSpecificationId": "sc-2", "name": "unit", "relationshipType": "dependency"}
                ]
            },
            {
                "id": "sc-2",
                "name": "unit",
                "valueType": "string",
                "characteristicValueSpecification": [
                    {"valueType": "string", "isDefault": true, "value": "SEC"},
                    {"valueType": "string", "value": "MIN"}
                ]
            },
            {
                "name": "cell",
                "valueType": "object",
                "characteristicValueSpecification": [
                    {"valueType": "object", "value": {"mcc": 232, "mnc": "01", "tags": ["urban", "4G"]}}
                ]
            }
        ]
    })
}

/// A smaller specification named `name`, for lists and filters.
pub fn specification(name: &str, lifecycle_status: &str) -> Value {
    json!({
        "name": name,
        "description": format!("{name} usages"),
        "version": "1.0",
        "lifecycleStatus": lifecycle_status,
        "isBundle": false,
        "validFor": {"startDateTime": "2024-01-01T00:00:00Z"},
        "specCharacteristic": [{"name": "volume", "valueType": "integer"}]
    })
}
