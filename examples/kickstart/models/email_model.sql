-- EMAIL_MODEL: one row per person who registered for a Rainshield webinar (Zoom) or is a
-- contact of the sales team (Salesforce), keyed by e-mail address. Grouparoo imports it as
-- the `people` model and syncs it to the Mailchimp audience.
--
-- The same person is often in both sources, sometimes under another first name (Barry Allen
-- registered for a webinar as "Barry"; Salesforce knows him as "Bartholomew"). The lower-cased
-- e-mail address is the unique key: one row per address, keeping the name the person typed
-- when registering (Zoom) over the sales record, and the newest row within a source.
-- UPDATED_AT is the newest load of any of the person's rows, so Grouparoo's incremental
-- schedule notices a change in either source.
--
-- Only the query: Tapestry wraps it in CREATE OR REPLACE VIEW ANALYTICS.MODELS.EMAIL_MODEL.
-- The raw tables are Airbyte's typed final tables (column names upper-cased by Snowflake).
WITH people AS (
    SELECT
        LOWER(TRIM(email))    AS email,
        first_name            AS first_name,
        last_name             AS last_name,
        1                     AS source_rank,
        _airbyte_extracted_at AS extracted_at
    FROM RAW.ZOOM.TAPESTRY_WEBINAR_REGISTRANTS
    WHERE NULLIF(TRIM(email), '') IS NOT NULL

    UNION ALL

    SELECT
        LOWER(TRIM(email))    AS email,
        firstname             AS first_name,
        lastname              AS last_name,
        2                     AS source_rank,
        _airbyte_extracted_at AS extracted_at
    FROM RAW.SALESFORCE.TAPESTRY_CONTACT
    WHERE NULLIF(TRIM(email), '') IS NOT NULL
      AND NOT COALESCE(isdeleted, FALSE)
)
SELECT
    email,
    first_name,
    last_name,
    MAX(extracted_at) OVER (PARTITION BY email) AS updated_at
FROM people
QUALIFY ROW_NUMBER() OVER (
    PARTITION BY email
    ORDER BY source_rank, extracted_at DESC
) = 1
