//! Connecting GitHub App installations to a house (SPEC §5). An owner starts the flow and gets
//! a signed, expiring `state` bound to the house and to them; GitHub sends the browser back to
//! the server's callback with that state and an OAuth `code`; the code becomes the user's
//! GitHub token, and `/user/installations` must list the installation for the connection to be
//! stored. The server only routes the setup URL and the callback here.

use arbe_core::{Action, AuditAction, GitHubConnection, InvalidInput};
use arbe_store::{Actor, AuditActor};
use chrono::Utc;

use crate::{ConnectStart, EnvError, Environments, GitHubUser, Installation, InstallationRepo, Result};

impl Environments {
    /// Starts connecting an installation to the actor's house. Needs an owner. `redirect_uri`
    /// is the server's OAuth callback, when the app lists several.
    pub fn github_connect_start(&self, actor: &Actor, redirect_uri: Option<&str>) -> Result<ConnectStart> {
        actor.require(Action::ConnectGitHub)?;
        self.github()?.connect_start(actor.house_id(), actor.user().id, redirect_uri, Utc::now())
    }

    /// Finishes a connect flow from GitHub's redirect: `state` as issued by
    /// [`Environments::github_connect_start`] (at most 15 minutes ago), the OAuth `code`, and
    /// the installation id GitHub passed. The user who started the flow must still own the
    /// house, and their GitHub user must reach the installation. Also answers the signed-in
    /// GitHub user, for the server's GitHub session.
    pub async fn github_connect_finish(
        &self,
        state: &str,
        code: &str,
        installation_id: i64,
        redirect_uri: Option<&str>,
    ) -> Result<(GitHubConnection, GitHubUser)> {
        let app = self.github()?;
        let (house, user) = app.verify_state(state, Utc::now())?;
        let member = self.store.membership(house, user).await?;
        member.require(Action::ConnectGitHub)?;
        let github_user = app.exchange_code(code, redirect_uri).await?;
        let user = self.store.user(user).await?;
        let connection =
            self.connect_verified(house, AuditActor::User(&user), Some(user.id), &github_user, installation_id).await?;
        Ok((connection, github_user))
    }

    /// Signs a GitHub user in through the app's OAuth flow (the `code` GitHub's redirect
    /// carries), for the server's GitHub session: what seed 001's listing endpoints answer to.
    pub async fn github_sign_in(&self, code: &str, redirect_uri: Option<&str>) -> Result<GitHubUser> {
        self.github()?.exchange_code(code, redirect_uri).await
    }

    /// Whether a GitHub App is configured (without one the GitHub routes answer 501).
    pub fn github_configured(&self) -> bool {
        self.github().is_ok()
    }

    /// Connects `installation_id` to the actor's house for a GitHub user already signed in
    /// through the app's OAuth flow (the server's GitHub session). Needs an owner.
    pub async fn github_connect(
        &self,
        actor: &Actor,
        github_user: &GitHubUser,
        installation_id: i64,
    ) -> Result<GitHubConnection> {
        actor.require(Action::ConnectGitHub)?;
        self.github()?;
        let by = AuditActor::Member(actor);
        self.connect_verified(actor.house_id(), by, Some(actor.user().id), github_user, installation_id).await
    }

    async fn connect_verified(
        &self,
        house: arbe_core::HouseId,
        by: AuditActor<'_>,
        connected_by: Option<arbe_core::UserId>,
        github_user: &GitHubUser,
        installation_id: i64,
    ) -> Result<GitHubConnection> {
        if installation_id <= 0 {
            return Err(InvalidInput::new("installation_id", "must be a positive integer").into());
        }
        let app = self.github()?;
        let reachable = app.user_installations(github_user).await?;
        let not_reachable =
            || EnvError::GitHubNotReachable { installation: installation_id, login: github_user.login.clone() };
        let installation = reachable.into_iter().find(|i| i.id == installation_id).ok_or_else(not_reachable)?;
        if installation.suspended_at.is_some() {
            return Err(InvalidInput::new("installation_id", "must not be a suspended installation").into());
        }
        let account = installation.account.ok_or_else(not_reachable)?;
        let connection = self
            .store
            .connect_github_installation(&GitHubConnection {
                house_id: house,
                installation_id,
                account_login: account.login,
                github_login: github_user.login.clone(),
                connected_by,
                connected_at: Utc::now(),
            })
            .await?;
        tracing::info!(%house, installation_id, account = %connection.account_login, "GitHub installation connected");
        let target = format!("installation {installation_id} ({})", connection.account_login);
        self.store.audit(Some(house), None, by, AuditAction::GitHubInstallationConnected, &target).await;
        Ok(connection)
    }

    /// The installations the actor's house connected. Needs a reader.
    pub async fn github_connections(&self, actor: &Actor) -> Result<Vec<GitHubConnection>> {
        actor.require(Action::Read)?;
        Ok(self.store.list_github_connections(actor.house_id()).await?)
    }

    /// Disconnects an installation from the actor's house: environments naming it stop getting
    /// tokens from it. Needs an owner.
    pub async fn github_disconnect(&self, actor: &Actor, installation_id: i64) -> Result<()> {
        actor.require(Action::ConnectGitHub)?;
        self.store.disconnect_github_installation(actor.house_id(), installation_id).await?;
        tracing::info!(house = %actor.house_id(), installation_id, "GitHub installation disconnected");
        let by = AuditActor::Member(actor);
        let target = format!("installation {installation_id}");
        self.store.audit(Some(actor.house_id()), None, by, AuditAction::GitHubInstallationDisconnected, &target).await;
        Ok(())
    }

    /// Seed 001's `GET /api/github/installations`: the app's installations the signed-in
    /// GitHub user can reach. It takes the GitHub session, not an arbe key.
    pub async fn github_user_installations(&self, github_user: &GitHubUser) -> Result<Vec<Installation>> {
        self.github()?.user_installations(github_user).await
    }

    /// Seed 001's `GET /api/github/installations/{id}/repos`: the repositories of one of them
    /// the signed-in GitHub user can reach.
    pub async fn github_user_installation_repos(
        &self,
        github_user: &GitHubUser,
        installation_id: i64,
    ) -> Result<Vec<InstallationRepo>> {
        self.github()?.user_installation_repos(github_user, installation_id).await
    }
}
