//! logind over D-Bus: where it is, whether it would power off or reboot, and the call.

use zbus_systemd::login1::ManagerProxy;
use zbus_systemd::zbus;

use super::{PowerAction, PowerError, BUS_ENV, BUS_TIMEOUT, SYSTEM_BUS};

/// The bus logind was found on, and the connection.
pub(super) struct Logind {
    conn: zbus::Connection,
    pub(super) bus: String,
}

impl Logind {
    pub(super) async fn connect(address: Option<&str>) -> Result<Logind, PowerError> {
        let bus = match address {
            Some(a) => format!("{a} ({BUS_ENV})"),
            None => SYSTEM_BUS.to_string(),
        };
        let fut = async {
            match address {
                Some(a) => zbus::connection::Builder::address(a).build().await,
                None => zbus::Connection::system().await,
            }
        };
        let conn = tokio::time::timeout(BUS_TIMEOUT, fut)
            .await
            .map_err(|_| PowerError::Timeout {
                bus: bus.clone(),
                timeout: BUS_TIMEOUT,
            })?
            .map_err(|e| PowerError::Unreachable {
                bus: bus.clone(),
                source: Box::new(e),
            })?;
        Ok(Logind { conn, bus })
    }

    async fn bounded<T>(
        &self,
        fut: impl std::future::Future<Output = zbus::Result<T>>,
    ) -> Result<zbus::Result<T>, PowerError> {
        tokio::time::timeout(BUS_TIMEOUT, fut)
            .await
            .map_err(|_| PowerError::Timeout {
                bus: self.bus.clone(),
                timeout: BUS_TIMEOUT,
            })
    }

    async fn proxy(&self) -> Result<ManagerProxy<'_>, PowerError> {
        ManagerProxy::new(&self.conn)
            .await
            .map_err(|e| self.unreachable(e))
    }

    fn unreachable(&self, e: zbus::Error) -> PowerError {
        PowerError::Unreachable {
            bus: self.bus.clone(),
            source: Box::new(e),
        }
    }

    /// `CanPowerOff`/`CanReboot`: "yes" goes on; anything else ("challenge" needs a polkit
    /// prompt nobody can answer here, "no", "na") is a refusal.
    pub(super) async fn check(&self, action: PowerAction) -> Result<(), PowerError> {
        let proxy = self.proxy().await?;
        let answer = match action {
            PowerAction::PowerOff => self.bounded(proxy.can_power_off()).await?,
            PowerAction::Reboot => self.bounded(proxy.can_reboot()).await?,
        }
        // No logind on the bus: ServiceUnknown / NameHasNoOwner.
        .map_err(|e| self.unreachable(e))?;
        if answer == "yes" {
            return Ok(());
        }
        Err(PowerError::NotAllowed {
            bus: self.bus.clone(),
            verb: action.verb(),
            method: action.method(),
            answer,
        })
    }

    pub(super) async fn call(&self, action: PowerAction) -> Result<(), PowerError> {
        let proxy = self.proxy().await?;
        let result = match action {
            PowerAction::PowerOff => self.bounded(proxy.power_off(false)).await?,
            PowerAction::Reboot => self.bounded(proxy.reboot(false)).await?,
        };
        result.map_err(|source| PowerError::Call {
            verb: action.verb(),
            method: action.method(),
            bus: self.bus.clone(),
            source: Box::new(source),
        })?;
        tracing::info!(bus = %self.bus, "logind accepted to {} the host ({})", action.verb(), action.method());
        Ok(())
    }
}
