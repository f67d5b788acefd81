//! Organizations, memberships and the role rules.
use crate::both;
use crate::helpers::*;
use reqwest::Method;
use serde_json::json;

both!(owner_creates_and_lists_orgs, |app: TestApp| async move {
    app.sign_up("owner@example.com").await;
    let id = app.create_org("Acme Corp", "acme").await;
    assert_eq!(id.len(), 26, "ULID id");
    let list = app.get("/api/user/organizations").await.expect(200, "OK");
    assert_eq!(list.data(), &json!([{"id": id, "slug": "acme", "name": "Acme Corp", "role": "owner"}]));
    let detail = app.get(&format!("/api/user/organizations/{id}")).await.expect(200, "OK");
    assert_eq!(detail.data()["memberCount"], 1);
    assert!(detail.data()["ssoLoginUrl"].as_str().unwrap().ends_with("/api/auth/sso/acme/login"));
    assert!(app.audit_actions(&id).await.contains(&"organization.create".to_string()));
});

both!(slug_is_derived_validated_and_unique, |app: TestApp| async move {
    app.sign_up("s@example.com").await;
    let a = app.post("/api/user/organizations", json!({"name": "Globex Corp."})).await.expect(201, "OK");
    assert_eq!(a.data()["slug"], "globex-corp");
    let dup = app.post("/api/user/organizations", json!({"name": "Other", "slug": "globex-corp"})).await.expect(409, "CONFLICT");
    assert!(dup.message().contains("globex-corp"));
    for bad in ["Bad Slug", "-x-", "ab", "api", "a_b_c"] {
        let r = app.post("/api/user/organizations", json!({"name": "X", "slug": bad})).await.expect(422, "VALIDATION_ERROR");
        assert!(r.message().starts_with("slug:"), "{bad}: {}", r.message());
    }
    app.post("/api/user/organizations", json!({"name": "  "})).await.expect(422, "VALIDATION_ERROR");
});

both!(another_orgs_id_is_not_found, |app: TestApp| async move {
    app.sign_up("a@example.com").await;
    let org = app.create_org("A Org", "a-org").await;
    let (stranger, _) = app.other_user("stranger@example.com").await;
    for path in [format!("/api/user/organizations/{org}"), format!("/api/user/organizations/{org}/members")] {
        let r = app.as_client(&stranger, Method::GET, &path, None).await.expect(404, "NOT_FOUND");
        // The same answer as for an org that does not exist at all.
        let ghost = app.as_client(&stranger, Method::GET, &path.replace(&org, &ulid::Ulid::new().to_string()), None).await;
        assert_eq!(r.body, ghost.expect(404, "NOT_FOUND").body);
    }
    let list = app.as_client(&stranger, Method::GET, "/api/user/organizations", None).await.expect(200, "OK");
    assert_eq!(list.data(), &json!([]));
    app.get("/api/user/organizations/not-a-ulid").await.expect(422, "VALIDATION_ERROR");
});

both!(roles_are_enforced_in_the_service, |app: TestApp| async move {
    app.sign_up("boss@example.com").await;
    let org = app.create_org("Roles Inc", "roles-inc").await;
    let (member, member_id) = app.other_user("m@example.com").await;
    let (admin, admin_id) = app.other_user("adm@example.com").await;
    app.add_member(&org, &member_id, "member").await;
    app.add_member(&org, &admin_id, "admin").await;
    let members = format!("/api/user/organizations/{org}/members");

    // A member sees the org but not the member list (owner or admin only): 403, not 404.
    app.as_client(&member, Method::GET, &format!("/api/user/organizations/{org}"), None).await.expect(200, "OK");
    app.as_client(&member, Method::GET, &members, None).await.expect(403, "FORBIDDEN");
    let list = app.as_client(&admin, Method::GET, &members, None).await.expect(200, "OK");
    assert_eq!(list.data().as_array().unwrap().len(), 3);

    // An admin may promote a member to admin but not to owner, and cannot touch the owner.
    let owner_id = app.get("/api/user/me").await.data()["id"].as_str().unwrap().to_string();
    app.as_client(&admin, Method::PATCH, &format!("{members}/{member_id}"), Some(json!({"role": "owner"}))).await.expect(403, "FORBIDDEN");
    app.as_client(&admin, Method::PATCH, &format!("{members}/{owner_id}"), Some(json!({"role": "member"}))).await.expect(403, "FORBIDDEN");
    app.as_client(&admin, Method::DELETE, &format!("{members}/{owner_id}"), None).await.expect(403, "FORBIDDEN");
    let promoted = app.as_client(&admin, Method::PATCH, &format!("{members}/{member_id}"), Some(json!({"role": "admin"}))).await;
    assert_eq!(promoted.expect(200, "OK").data()["role"], "admin");
    app.as_client(&admin, Method::PATCH, &format!("{members}/{member_id}"), Some(json!({"role": "root"}))).await.expect(422, "VALIDATION_ERROR");

    // The last owner can neither be demoted nor removed.
    app.send(app.client.patch(app.url(&format!("{members}/{owner_id}"))).json(&json!({"role": "admin"}))).await.expect(409, "CONFLICT");
    app.send(app.client.delete(app.url(&format!("{members}/{owner_id}")))).await.expect(409, "CONFLICT");
    // The owner removes the admin; the removed admin now gets 404.
    app.send(app.client.delete(app.url(&format!("{members}/{admin_id}")))).await.expect(200, "OK");
    app.as_client(&admin, Method::GET, &members, None).await.expect(404, "NOT_FOUND");
    let actions = app.audit_actions(&org).await;
    assert!(actions.contains(&"member.role_change".into()) && actions.contains(&"member.remove".into()), "{actions:?}");
});
