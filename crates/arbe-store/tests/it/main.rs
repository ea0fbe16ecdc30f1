//! The store's behaviour, run the same on SQLite and on PostgreSQL.
//!
//! Each case is an `async fn(TestStore)`; `both_backends!` turns it into one test per backend.

mod cases;

arbe_store::both_backends!(cases =>
    house_names_are_unique,
    api_key_auth_finds_member_and_honours_revocation,
    objects_of_another_house_are_not_found,
    secret_versions_rotate_with_compare_and_set,
    secret_versions_keep_only_current_and_previous,
    sealed_secrets_returns_current_versions_of_named_secrets,
    environment_names_are_unique_without_case_among_live_rows,
    environment_lookup_by_name_ignores_case,
    environment_soft_delete_hides_row_and_frees_name,
    thread_snapshot_survives_environment_edit_delete_and_purge,
    entries_are_numbered_without_gaps_under_concurrent_appends,
    entries_are_numbered_without_gaps_across_two_stores,
    entries_are_append_only,
    entries_resume_after_a_sequence_number,
    default_agent_moves_to_the_newest_default,
    job_claim_race_has_exactly_one_winner,
    expired_lease_is_requeued_and_old_owner_loses_it,
    cancel_jobs_cancels_queued_and_flags_running,
    idle_sandboxes_lists_only_started_and_stale,
    job_entries_are_written_only_while_the_lease_is_held,
    a_thread_runs_one_job_at_a_time,
    thread_status_follows_its_latest_status_entry,
    migration_carries_members_and_keys_over_to_users,
    a_user_in_two_houses_acts_in_each_with_that_role,
    quotas_cap_sandboxes_and_concurrent_dispatches,
    a_single_house_deployment_refuses_a_second_house,
    github_connections_and_the_audit_trail_belong_to_their_house,
);

arbe_store::postgres_only!(cases => appends_wake_listeners);
